"""Configuration: Kong's declarative format in, immutable objects out.

* ``model``: the frozen dataclasses every other part of fastgw reads;
* ``schema``: the declarative schema library (also used by plugin schemas);
* ``entities``: the schemas of services, routes, upstreams, consumers, plugins
  and fastgw's ``_gateway`` block;
* ``loader``: ``load_config``, ``parse_config``, ``apply_overrides``,
  ``redacted_document``, ``check_file`` and ``ConfigError``.

Nothing is imported here, so that importing ``fastgw.config.model`` stays cheap.
"""
