"""Razor: the pod's authoritative DNS server, answering with random, shuffle-sharded VIPs.

The pure core (:mod:`wire`, :mod:`answers`, :mod:`shard`, :mod:`rrl`, :mod:`engine`,
:mod:`attribution`) takes bytes, state and time as arguments; :mod:`server` is the one
adapter (uvloop, UDP and TCP, one process per core) and :mod:`source` is the seam where
live state comes in.
"""
