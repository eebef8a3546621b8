"""file-log: append one JSON line per request (Kong's basic log serializer
shape) to a file."""
