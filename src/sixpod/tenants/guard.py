"""The churn guard: refuse to remove too many endpoints at once, unless forced.

A bad deploy or a broken scheduler that deletes most of an app's containers, or a slice of
the whole pod, must not reach every edge before a human looks. Two layers share these limits
and this window: the store refuses a request whose removals, added up over the window, go
past them (HTTP 409, nothing stored); the publisher, the emergency brake for what got past
one controller's view (several controllers, direct database edits), holds back the part of
a batch that would. Removals are weighed against what is left afterwards, so a replace
(add the new, remove the old) is not a loss. Pure: time is an argument.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, Strict

from sixpod.configtypes import ConfigModel, Seconds
from sixpod.tenants.errors import ChurnGuardTripped


class GuardLimits(ConfigModel):
    """The churn guard's limits: the ``guard`` section of ``controller.yaml``, and what the
    store and the publisher weigh removals against (validated however they are built)."""

    app_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Most of one app's endpoints that may go at once (0-1)."""
    pod_share: Annotated[float, Field(gt=0, le=1)] = 0.2
    """Most of all endpoints in the pod that may go at once (0-1)."""
    min_endpoints: Annotated[int, Strict(), Field(ge=1)] = 4
    """Apps with fewer endpoints than this are not guarded (scaling 2 -> 1 is normal)."""
    window: Seconds = 10.0
    """Seconds over which the publisher adds up removals."""

    def app_trips(self, removed: int, remaining: int) -> bool:
        before = removed + remaining
        return before >= self.min_endpoints and removed > self.app_share * before

    def pod_trips(self, removed: int, remaining: int) -> bool:
        before = removed + remaining
        return before >= self.min_endpoints and removed > self.pod_share * before


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the publisher holds a batch back."""

    reason: str
    app: str | None


class ChurnWindow:
    """Removals within the last ``limits.window`` seconds: per app, and net across the pod.

    Per app, every removal counts; across the pod, only removals not made up by additions
    (a replace moves containers, it loses none).
    """

    def __init__(self, limits: GuardLimits) -> None:
        self.limits = limits
        self._events: deque[tuple[float, str, int, int]] = deque()
        self._per_app: dict[str, int] = {}
        self._net = 0

    def _expire(self, now: float) -> None:
        while self._events and self._events[0][0] <= now - self.limits.window:
            _, app, n, net = self._events.popleft()
            self._per_app[app] -= n
            if not self._per_app[app]:
                del self._per_app[app]
            self._net -= net

    def net_since(self, now: float, since: float) -> int:
        """Net removals recorded after ``since``: what a pod total counted then still holds."""
        self._expire(now)
        return sum(net for t, _, _, net in self._events if t > since)

    def check(
        self,
        now: float,
        removals: dict[str, int],
        remaining: dict[str, int],
        total_remaining: int,
        *,
        net: int | None = None,
    ) -> Trip | None:
        """Would these removals (``remaining`` after them, per app and in total) trip it?

        ``net`` is how many of them are not made up by additions (default: all).
        """
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
        lost = self._net + (sum(removals.values()) if net is None else net)
        if lost and self.limits.pod_trips(lost, total_remaining):
            return Trip(
                f"the pod would lose {lost} of {lost + total_remaining} endpoints within "
                f"{self.limits.window:g} s (limit {self.limits.pod_share:.0%})",
                None,
            )
        return None

    def check_or_raise(
        self,
        now: float,
        removals: dict[str, int],
        remaining: dict[str, int],
        total_remaining: int,
        *,
        net: int | None = None,
    ) -> None:
        trip = self.check(now, removals, remaining, total_remaining, net=net)
        if trip is not None:
            raise ChurnGuardTripped(f"{trip.reason}; retry with force=true if this is intended")

    def record(self, now: float, removals: dict[str, int], *, net: int | None = None) -> None:
        """Count removals that went through; ``net`` as in :meth:`check`."""
        left = sum(removals.values()) if net is None else net
        for app, n in sorted(removals.items()):
            if n:
                share = min(n, left)
                left -= share
                self._events.append((now, app, n, share))
                self._per_app[app] = self._per_app.get(app, 0) + n
                self._net += share
