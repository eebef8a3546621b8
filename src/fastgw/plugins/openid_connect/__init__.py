"""openid-connect: bearer tokens from an OpenID provider (JWTs checked
against its JWKS, or opaque tokens by RFC 7662 introspection), mapped to
consumers and groups, after Kong's plugin of the same name (a subset: see
docs/kong-compatibility.md)."""
