"""ToR resilient hashing: mirror FRR's VIP paths into kernel resilient nexthop groups.

FRR 8.4 installs BGP multipath routes as plain (hash-threshold) nexthop groups: when one of N
nodes leaves, the hash space is re-split and flows on the *other* nodes move too. The kernel's
resilient groups (``type resilient``, Linux 5.13+) keep a bucket table instead; replacing a
group's members in place moves only the buckets of the member that left. This module keeps a
copy of FRR's VIP routes on such groups, in a routing table of its own that ``ip rule to VIP
lookup T`` puts in front of the main table (the helper never touches the main table: zebra would
withdraw its own routes there).

Layout (sans-IO core, thin adapters, see STYLE.md):

* :mod:`.errors`: the package's exceptions (root :class:`~.errors.ResilientError`).
* :mod:`.model`: values, the helper's id ranges, the planner's operations and its plan.
* Codecs: :mod:`.frr` (:func:`~.frr.parse_frr_routes` / :func:`~.frr.format_frr_routes` for
  FRR's ``show ip[v6] route json``, captured samples in ``tests/routing/data/``);
  :mod:`.iproute` (:func:`~.iproute.parse_kernel_state` for ``ip -N -j nexthop|route|rule
  show``; :func:`~.iproute.format_batches` renders operations as ``ip -batch`` text).
* Core: :mod:`.plan` (:func:`~.plan.plan` takes FRR's paths and the kernel state and returns
  the desired state and the minimal ordered list of operations). No I/O, no clock.
* :mod:`.config`: :class:`~.config.TorResilientConfig`, the daemon's typed configuration.
* :mod:`.adapters`: :class:`~.adapters.IpKernel` (``ip -n NS``), :class:`~.adapters.VtyshFrr`
  (``vtysh --vty_socket DIR``), :class:`~.adapters.RouteEvents` (netlink route notifications
  through pyroute2, to wake the loop).
* :mod:`.daemon`: :func:`~.daemon.sync` (read, plan, apply, through the ports
  :class:`~.daemon.FrrReader` / :class:`~.daemon.KernelPort`) and :func:`~.daemon.run` (the
  daemon loop, bounded interval).

The codecs, the model and the planner import nothing that does I/O.

Decisions:

* **Paths come from FRR**, never from the kernel's main table: the selected entry's *active*
  next hops (``ip`` + ``interfaceName``). FRR 8.4 can leave a stale kernel group after a flap
  (upstream #12239, #13413, #14481). Recursive next hops are replaced by their resolvers.
* **All or nothing per VIP.** If any active next hop of the selected route cannot be a member
  (an IPv4 gateway, a blackhole, an interface route), the VIP is *not mirrored*: its helper
  route is removed and lookups fall through to FRR's own route in the main table. Mirroring a
  subset of FRR's paths would send traffic where FRR does not.
* **A VIP without paths** loses its helper route (lookup falls through to the main table, where
  FRR has no route either). Its ``ip rule`` stays: rules follow the configured VIP set only, so
  a path coming back never waits for a rule, and rules never churn with BGP.
* **Ids.** Helper objects use ids far above zebra's: zebra and the FRR daemons allocate below
  ``ZEBRA_NHG_PROTO_UPPER`` (250,000,000) and EVPN uses ``1<<24 | n`` and ``2<<24 | n``. Members
  live in ``[0x10000000, 0x18000000)``: the same ``(gateway, dev)`` keeps the id it has in the
  kernel, and a new one gets a hash of ``gateway%dev`` (linear probing on collision), so it
  gets the same id again after a restart or a re-join. Groups live in
  ``[0x18000000, 0x20000000)`` and are allocated, lowest free id first. Every helper object
  carries the helper's protocol number (default 250); an object in the helper's range with
  another protocol is never touched and its id never reused.
* **Groups are allocated to VIP cohorts and kept.** A VIP stays on its group as long as it
  exists; the group's members are replaced in place when the cohort's path set changes, which
  is what moves only the leaving node's buckets. When the VIPs of one group disagree (a node
  withdrew some of them), the largest part keeps the group and the others join a group with
  the same path set or a new one. Two groups that end up with the same path set are *not*
  merged: merging would reshuffle every flow of the VIPs that move. So a fresh start has one
  group per distinct path set, and later there may be more (never more than the VIPs).
* A group whose bucket count or type differs from the configuration cannot be changed in place
  (the kernel refuses); its VIPs move to a new group (flows reshuffle once) and it is deleted.
* **Order** (every prefix of a plan is safe; a failed batch is retried by the next sync):
  IPv6 rules added; IPv4 rules added; members created; groups created or replaced; routes
  set; stale routes, IPv4 rules, groups and members deleted; IPv6 rules deleted. ``ip -batch``
  cannot mix rule families, so a plan is one to three ``ip`` runs (one when only paths change).
* Table ``T`` belongs to the helper: any route there that is not desired is removed.
* Next-hop weights are not mirrored (the pod uses plain ECMP; FRR shows weight 1).
"""
