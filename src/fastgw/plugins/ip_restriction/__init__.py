"""``ip-restriction``: allow or deny clients by IP address or CIDR range (IPv4 and IPv6)."""
