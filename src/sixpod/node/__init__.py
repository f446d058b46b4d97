"""A node's own setup, as an operator runs it on a fresh server: what ``sixpod render`` writes
for it beyond the routing and edge configs (network config, Redis replica, systemd units), and
``sixpod node bootstrap``, which applies the network config and supervises the services.

- :mod:`~sixpod.node.netconfig`: the typed network config and its JSON codec (pure);
- :mod:`~sixpod.node.render`: the rendered files (pure);
- :mod:`~sixpod.node.plan`: what to change, from the wanted config and the current state
  (pure; :mod:`~sixpod.node.events` holds the changes);
- :mod:`~sixpod.node.netlink`: reads the state and applies the changes (pyroute2, sysctls);
- :mod:`~sixpod.node.services`: the services and their effective configs (pure);
- :mod:`~sixpod.node.supervisor`: starts them, restarts what dies, stops them all.
"""
