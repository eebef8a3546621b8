"""Cache keys for responses (Kong's proxy-cache key, hashed with xxh3-128).

One pure-Python source, compiled by Cython with the types in ``cachekey.pxd``
(aiohttp's pattern); it also runs uncompiled, and both builds give the same keys.

A key covers the method, the host (case-folded), the path, the query string
(parameters decoded, sorted, and only the ``vary_query_params`` when any are
configured), the ``vary_headers`` and their values, and ``extra`` (consumer
and route ids). Fields are written as netstrings ("<length>:<bytes>"), so an
encoded request reads back one way only: no choice of values makes two
different requests encode alike.
"""

from urllib.parse import unquote_to_bytes

from xxhash import xxh3_128_hexdigest

# "<length>:" for the lengths most fields have, built once.
_LENGTH_PREFIXES = tuple(b"%d:" % length for length in range(1024))
# An absent header: no length prefix starts with "-", so no value reads as it.
_ABSENT = b"-:"


def _length_prefix(field):
    length = len(field)
    if length < 1024:
        return _LENGTH_PREFIXES[length]
    return b"%d:" % length


def _append_netstring(parts, field):
    # PERF: two appends cost less than building the netstring first.
    parts.append(_length_prefix(field))
    parts.append(field)


def _decode(component):
    """Percent- and plus-decoding (form encoding), so %7E, ~ and %7e match."""
    return unquote_to_bytes(component.replace(b"+", b" "))


def _escape(decoded, is_name):
    """Re-encode only what would change how a query string splits or decodes."""
    escaped = decoded.replace(b"%", b"%25").replace(b"&", b"%26").replace(b"+", b"%2B")
    return escaped.replace(b"=", b"%3D") if is_name else escaped


def _canonical_query(query, vary_query_params):
    """The query's parameters in one canonical form, sorted so their order is irrelevant.

    Parameters without "%" or "+" are already canonical and are kept as sent
    (the common case costs no decoding); others are decoded and re-encoded
    minimally, so equivalent spellings meet. "a" and "a=" stay different.
    """
    components = query.split(b"&")
    if b"%" in query or b"+" in query:
        components = [_canonical_component(component) for component in components]
    if vary_query_params:
        components = [c for c in components if _decoded_name(c) in vary_query_params]
    components.sort()
    # Empty components ("a=1&&b=2") sort first; dropping them keeps "&" out of a key.
    first = 0
    while first < len(components) and not components[first]:
        first += 1
    return b"&".join(components[first:] if first else components)


def _canonical_component(component):
    if b"%" not in component and b"+" not in component:
        return component
    raw_name, equals, raw_value = component.partition(b"=")
    canonical = _escape(_decode(raw_name), True)
    if equals:
        canonical += b"=" + _escape(_decode(raw_value), False)
    return canonical


def _decoded_name(canonical_component):
    name = canonical_component.partition(b"=")[0]
    return _decode(name) if b"%" in name else name


def cache_key(method, host, path, query, vary_query_params, vary_headers, headers, extra=b""):
    """The 32-hex-digit cache key of a request.

    ``query`` is the raw query string (no "?"), or None. ``vary_query_params``
    limits the parameters that count; None or empty counts them all, like
    Kong. ``headers`` maps lower-case names to values; ``vary_headers`` holds
    lower-case names in a fixed order (see ``vary_names``).
    """
    parts = []
    _append_netstring(parts, method)
    _append_netstring(parts, host.lower())
    _append_netstring(parts, path)
    _append_netstring(parts, _canonical_query(query, vary_query_params) if query else b"")
    for name in vary_headers:
        _append_netstring(parts, name)
        value = headers.get(name)
        if value is None:
            parts.append(_ABSENT)
        else:
            _append_netstring(parts, value)
    _append_netstring(parts, extra)
    return xxh3_128_hexdigest(b"".join(parts))


def vary_names(names, lowercase=True):
    """Configured vary names as ``cache_key`` wants them: bytes, deduplicated, sorted.

    Header names are case-insensitive (``lowercase=True``); query parameter
    names are not (pass ``lowercase=False``).
    """
    encoded = {name.encode() if isinstance(name, str) else bytes(name) for name in names}
    if lowercase:
        encoded = {name.lower() for name in encoded}
    return tuple(sorted(encoded))
