"""``request-transformer``: change the method, path, headers, query string and body
of a request before it goes upstream."""
