"""Token and certificate identity, shared by the plugins that need it
(openid-connect, mtls-auth, and the MCP gateway's resource server).

* ``provider``: one issuer's discovery document and signing keys, fetched
  from its own URLs only, cached, refetched when an unknown key id arrives
  (at most once per ``rediscovery_lifetime``) and served from cache while the
  issuer is down;
* ``tokens``: a bearer JWT checked against those keys and a policy (issuer,
  audience, scopes, time), with a bounded cache of verified tokens;
* ``introspection``: RFC 7662 introspection, cached and coalesced.
"""
