"""The edge: nginx with a Lua balancer routes HTTP by Host to app containers.

- :mod:`~sixpod.edge.config`: ``edge.yaml``, the agent's typed config.
- :mod:`~sixpod.edge.nginxconf`: the nginx config, generated once from that config.
- :mod:`~sixpod.edge.tables`: pure core, tenant state and changes to admin batches.
- :mod:`~sixpod.edge.agent`: the asyncio adapter: supervises nginx, follows the reader,
  pushes deltas over the admin unix socket, detects an nginx that lost its state.
- ``lua/sixpod_edge.lua``: the data plane inside nginx.
"""
