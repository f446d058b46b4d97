"""The ports Prometheus scrapes on a pod's devices, in one place (the rendered daemon configs
listen on them; ``prometheus.yml``'s targets name them)."""

from __future__ import annotations

ANNOUNCER = 9180
"""``sixpod announcer``, on every node."""
EDGE = 9181
"""``sixpod edge-agent``, on edge nodes."""
RESILIENT = 9182
"""``sixpod tor-resilient``, on every ToR."""
RAZOR = 9153
"""``sixpod razor``, on nodes that run it (the rendered razor.yaml's ``metrics``)."""
CONTROLLER = 8700
"""``sixpod controller``: ``/metrics`` beside its API."""
NODE_EXPORTER = 9100
"""Debian ``prometheus-node-exporter``, on every node and ToR."""
FRR_EXPORTER = 9342
"""Debian ``prometheus-frr-exporter``, on every ToR."""
BLACKBOX_EXPORTER = 9115
"""Debian ``prometheus-blackbox-exporter``, beside Prometheus."""
