"""prometheus: request metrics counted in the compiled core, exported by the
admin API's ``GET /metrics`` (Kong's plugin of the same name)."""
