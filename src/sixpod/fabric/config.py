"""How ``sixpod fabric`` reaches each ToR and the deploy's limits: ``fabric.yaml`` (typed).

Every key is optional. A ToR not listed is reached on this machine with the tools' defaults
(``lldpcli`` on lldpd's default socket, ``vtysh`` on FRR's): run on the switch itself. In the
lab each ToR is a network namespace whose lldpd and FRR have sockets of their own::

    tors:
      r1-tor: {netns: lab-r1-tor, lldp_socket: /run/lab/r1-tor/lldpd.sock,
               vty_socket: /run/lab/frr-r1-tor, confdir: /run/lab/frr-r1-tor}
    log: /var/log/sixpod/fabric-deploy.log
    deadline: 30
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, Strict

from sixpod.errors import SixpodError
from sixpod.fabric.errors import FabricError

Text = Annotated[str, Strict(), Field(min_length=1)]


class FabricConfigError(FabricError):
    """The operator's fault: ``fabric.yaml`` cannot be used. Exit 1."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TorAccess(_Model):
    netns: Text | None = Field(
        default=None, description="network namespace the ToR's tools run in (the lab)"
    )
    lldp_socket: Text | None = Field(
        default=None, description="lldpd's control socket (lldpcli -u); default lldpd's own"
    )
    vty_socket: Text | None = Field(
        default=None, description="directory of FRR's vty sockets (vtysh --vty_socket)"
    )
    confdir: Text | None = Field(
        default=None,
        description="where a deploy saves the running config as frr.conf (frr-reload.py "
        "--confdir); default /etc/frr, as on the switch. Give every lab ToR its own",
    )


class FabricConfig(_Model):
    config_error: ClassVar[type[SixpodError]] = FabricConfigError

    tors: dict[str, TorAccess] = Field(
        default_factory=dict, description="how to reach each ToR's lldpd and FRR"
    )
    lldpcli: Text = Field(default="lldpcli", description="the lldpcli program")
    vtysh: Text = Field(default="vtysh", description="the vtysh program")
    frr_reload: Text = Field(
        default="/usr/lib/frr/frr-reload.py",
        description="FRR's reload script (Debian package frr-pythontools)",
    )
    log: Text = Field(
        default="/var/log/sixpod/fabric-deploy.log",
        description="where every deploy is recorded (JSON lines: who, what, when, the diff)",
    )
    deadline: Annotated[float, Strict(), Field(gt=0, le=3600)] = Field(
        default=60.0,
        description="seconds a ToR's sessions have to come back Established with their "
        "expected prefix counts after a deploy, before it is rolled back",
    )
    settle: Annotated[float, Strict(), Field(ge=0, le=3600)] = Field(
        default=10.0,
        description="seconds the sessions are watched after a reload before they count as "
        "healthy (FRR applies a changed route-map after its 5 s delay timer)",
    )
    firewall_settle: Annotated[float, Strict(), Field(ge=0, le=3600)] = Field(
        default=12.0,
        description="seconds the sessions are watched after a firewall is loaded (deploy "
        "--firewall): longer than the BGP hold time (9 s), since a firewall that drops a "
        "session's packets shows only when its hold timer expires",
    )
    max_removed_share: Annotated[float, Strict(), Field(ge=0, le=1)] = Field(
        default=0.25,
        description="share of a ToR's BGP neighbors a plan may remove without --force",
    )
    timeout: Annotated[float, Strict(), Field(gt=0, le=600)] = Field(
        default=60.0, description="seconds any one tool run may take"
    )

    def access(self, tor: str) -> TorAccess:
        return self.tors.get(tor, TorAccess())
