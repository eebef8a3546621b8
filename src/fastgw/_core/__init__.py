"""The compiled hot path. See ``fastgw.core_status()`` for whether it loaded."""
