"""``hmac-auth``: identify the consumer by an HMAC signature of the request's
headers, made with a secret the consumer shares with the gateway."""
