"""Routing: what each node announces over BGP, and why.

``events`` holds the package's values and events; ``health`` is the announcer's pure core
(health checks, node state machine, drain, pod-wide safety floor); ``routesync`` turns the
desired routes into ExaBGP operations. Adapters that talk to ExaBGP, Redis and the kernel sit
beside them.
"""
