"""key-auth: identify the consumer by an API key sent in a header, the query
string or the body (Kong's plugin of the same name)."""
