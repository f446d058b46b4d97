"""Monitoring: the alert rules Prometheus loads for a pod (``alerts.yml``), the ports sixpod's
daemons and the exporters are scraped on (:mod:`.ports`), and the rendered Prometheus config
with its file_sd targets (:mod:`.prometheus`)."""
