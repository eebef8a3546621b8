"""basic-auth: identify the consumer by an HTTP Basic user name and password
(Kong's plugin of the same name)."""
