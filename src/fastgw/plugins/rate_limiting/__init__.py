"""rate-limiting, Kong's plugin: at most N requests per second, minute, hour,
day, month and/or year, per consumer, credential, IP, service, header value
or path.

Policies:

* ``local`` (default): the counters live in this node's shared memory, so all
  workers of one gateway enforce one limit exactly; separate gateways count
  separately.
* ``redis``: the counters live in Redis and every gateway using it enforces
  one limit; each request costs one Redis round trip (a Lua script that
  checks and counts atomically). If Redis fails, ``fault_tolerant`` gateways
  count on the node until it is back; the others answer 500.

Algorithms (a fastgw extension; Kong has only the first):

* ``fixed``: Kong's calendar windows. Simple and exact, but a client may spend
  a whole quota at the end of one window and another at the start of the
  next: up to twice the limit in a short moment.
* ``sliding``: the last full period, estimated as the previous window's count
  weighted by its share still inside the period, plus the current count. No
  double burst at boundaries; the estimate assumes the previous window's
  requests were spread evenly.
* ``token-bucket``: each period's quota comes back continuously (limit /
  period length per second) up to ``burst`` requests at once. Smooth; with
  policy local each worker keeps its own buckets, so a node of N workers lets
  up to N times the rate through (use policy redis for one bucket per node
  or cluster).
"""
