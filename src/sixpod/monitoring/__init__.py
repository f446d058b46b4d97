"""Monitoring: the alert rules Prometheus loads for a pod."""
