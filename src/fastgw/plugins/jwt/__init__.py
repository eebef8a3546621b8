"""jwt: identify the consumer by a signed JSON Web Token (RFC 7519), after
Kong's plugin of the same name."""
