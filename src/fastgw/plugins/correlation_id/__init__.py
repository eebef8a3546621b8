"""``correlation-id``: give each request an id header, upstream and optionally downstream."""
