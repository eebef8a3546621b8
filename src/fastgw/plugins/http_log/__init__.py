"""http-log: send each request's log entry (Kong's basic log serializer shape)
to an HTTP endpoint, in batches, from a bounded in-memory queue."""
