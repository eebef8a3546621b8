"""``request-termination``: answer every request (or those carrying a trigger)
with a fixed status and body, without reaching the upstream."""
