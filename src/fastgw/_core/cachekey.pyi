from collections.abc import Collection, Iterable

def cache_key(
    method: bytes,
    host: bytes,
    path: bytes,
    query: bytes | None,
    vary_query_params: Collection[bytes] | None,
    vary_headers: tuple[bytes, ...],
    headers: dict[bytes, bytes],
    extra: bytes = b"",
) -> str: ...
def vary_names(names: Iterable[str | bytes], lowercase: bool = True) -> tuple[bytes, ...]: ...
