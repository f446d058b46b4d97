"""The churn guard: refuse to remove too many endpoints at once, unless forced.

A bad deploy or a broken scheduler that deletes most of an app's containers, or a slice of
the whole pod, must not reach every edge before a human looks. Two layers share these limits:
the store refuses such a request outright (HTTP 409), and the publisher holds back a batch
whose removals within a sliding window exceed them (a burst of small requests). Pure: time
is an argument.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sixpod.tenants.errors import ChurnGuardTripped


@dataclass(frozen=True, slots=True)
class GuardLimits:
    app_share: float = 0.5
    """Most of one app's endpoints that may go at once (0-1)."""
    pod_share: float = 0.2
    """Most of all endpoints in the pod that may go at once (0-1)."""
    min_endpoints: int = 4
    """Apps with fewer endpoints than this are not guarded (scaling 2 -> 1 is normal)."""
    window: float = 10.0
    """Seconds over which the publisher adds up removals."""

    def __post_init__(self) -> None:
        if not (0 < self.app_share <= 1 and 0 < self.pod_share <= 1):
            raise ValueError("churn guard shares must be in (0, 1]")
        if self.min_endpoints < 1 or self.window <= 0:
            raise ValueError("churn guard: min_endpoints >= 1 and window > 0")

    def app_trips(self, removed: int, remaining: int) -> bool:
        before = removed + remaining
        return before >= self.min_endpoints and removed > self.app_share * before

    def pod_trips(self, removed: int, remaining: int) -> bool:
        before = removed + remaining
        return before >= self.min_endpoints and removed > self.pod_share * before

    def check_request(self, app: str, *, before: int, removed: int) -> None:
        if self.app_trips(removed, before - removed):
            raise ChurnGuardTripped(
                f"removing {removed} of app {app!r}'s {before} endpoints "
                f"({removed / before:.0%}) exceeds the churn guard's {self.app_share:.0%}; "
                "retry with force=true if this is intended"
            )


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the publisher holds a batch back."""

    reason: str
    app: str | None


class ChurnWindow:
    """Removals published within the last ``limits.window`` seconds, per app and in total."""

    def __init__(self, limits: GuardLimits) -> None:
        self.limits = limits
        self._events: deque[tuple[float, str, int]] = deque()
        self._per_app: dict[str, int] = {}
        self._total = 0

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.limits.window:
            _, app, n = self._events.popleft()
            self._per_app[app] -= n
            if not self._per_app[app]:
                del self._per_app[app]
            self._total -= n

    def check(
        self,
        now: float,
        removals: dict[str, int],
        remaining: dict[str, int],
        total_remaining: int,
    ) -> Trip | None:
        """Would publishing these removals (with what stays afterwards) trip the guard?"""
        self._expire(now)
        for app, n in sorted(removals.items()):
            removed = self._per_app.get(app, 0) + n
            left = remaining.get(app, 0)
            if self.limits.app_trips(removed, left):
                return Trip(
                    f"app {app!r} would lose {removed} of {removed + left} endpoints within "
                    f"{self.limits.window:g} s (limit {self.limits.app_share:.0%})",
                    app,
                )
        removed = self._total + sum(removals.values())
        if removals and self.limits.pod_trips(removed, total_remaining):
            return Trip(
                f"the pod would lose {removed} of {removed + total_remaining} endpoints within "
                f"{self.limits.window:g} s (limit {self.limits.pod_share:.0%})",
                None,
            )
        return None

    def record(self, now: float, removals: dict[str, int]) -> None:
        for app, n in removals.items():
            if n:
                self._events.append((now, app, n))
                self._per_app[app] = self._per_app.get(app, 0) + n
                self._total += n
