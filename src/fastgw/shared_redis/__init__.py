"""The Redis that gateway instances share: one record for the plugins'
``redis`` settings (Kong's fields, Sentinel and Cluster included) and one
way to connect to a single Redis, a Sentinel-watched master or a Cluster.

``schema`` is the plugins' record; ``client`` builds redis-py's own clients
for the three topologies, from that record or from ``_gateway.redis``.
"""
