"""mtls-auth: the caller is who its TLS client certificate says, when one of
the configured CAs vouches for it, after Kong's plugin of the same name."""
