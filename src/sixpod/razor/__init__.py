"""Razor: the pod's authoritative DNS server, answering with random, shuffle-sharded VIPs.

The pure core takes bytes, state and time as arguments: :mod:`wire` (the DNS codec),
:mod:`answers` (pre-encoded answer tables), :mod:`shard` (rendezvous shuffle shards),
:mod:`rrl` (response rate limiting), :mod:`cookies`, :mod:`engine` (query in, response out)
and :mod:`attribution` (who is under attack, and the re-shard plan). :mod:`config` is the
typed config, :mod:`errors` the root exception carrying the DNS rcode. The adapters:
:mod:`server` (uvloop, UDP and TCP, one process per core), :mod:`metrics` (Prometheus and
the attribution API), :mod:`reshard` (the re-shard through the controller API) and
:mod:`feed`, the seam where live state comes in.
"""
