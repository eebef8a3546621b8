"""fastgw._core.cachekey, run against the compiled and the pure-Python build."""

import pytest

CORE_MODULE = "cachekey"
HEADERS = {b"accept": b"application/json", b"accept-language": b"en", b"x-tenant": b"acme"}


def key(
    mod,
    *,
    method=b"GET",
    host=b"api.local",
    path=b"/v1/models",
    query=None,
    vary_query_params=None,
    vary_headers=(),
    headers=HEADERS,
    extra=b"",
):
    return mod.cache_key(method, host, path, query, vary_query_params, vary_headers, headers, extra)


def test_compiled_build_is_extension(load_core):
    assert load_core(CORE_MODULE, "compiled").__file__.endswith(".so")


def test_key_is_deterministic_hex(core_module):
    first = key(core_module, query=b"a=1")
    assert first == key(core_module, query=b"a=1")
    assert len(first) == 32
    int(first, 16)


def test_both_builds_give_the_same_keys(load_core):
    requests = [
        dict(query=b"b=2&a=1&flag", vary_headers=(b"accept",), extra=b"route-1"),
        dict(query=b"q=caf%C3%A9+au+lait&x=%7e", host=b"API.Local"),
        dict(query=b"", vary_query_params=(b"a",), vary_headers=(b"missing",)),
    ]
    compiled, pure = (load_core(CORE_MODULE, build) for build in ("compiled", "pure"))
    for request in requests:
        assert key(compiled, **request) == key(pure, **request)


class TestQuery:
    def test_parameter_order_is_irrelevant(self, core_module):
        assert key(core_module, query=b"a=1&b=2&c=3") == key(core_module, query=b"c=3&a=1&b=2")

    def test_repeated_parameter_values_are_sorted(self, core_module):
        assert key(core_module, query=b"tag=x&tag=y") == key(core_module, query=b"tag=y&tag=x")

    def test_values_matter(self, core_module):
        assert key(core_module, query=b"a=1") != key(core_module, query=b"a=2")
        assert key(core_module, query=b"a=1") != key(core_module, query=None)

    def test_percent_encoding_is_normalised(self, core_module):
        plain = key(core_module, query=b"name=caf\xc3\xa9 ~x&q=a b")
        assert key(core_module, query=b"name=caf%C3%A9%20%7Ex&q=a+b") == plain
        assert key(core_module, query=b"q=a%20b&name=caf%c3%a9+%7ex") == plain

    def test_encoded_separators_stay_data(self, core_module):
        # "a=1%262" is one parameter whose value holds "&"; "a=1&2" is two.
        assert key(core_module, query=b"a=1%262") != key(core_module, query=b"a=1&2")
        assert key(core_module, query=b"a%3Db=c") != key(core_module, query=b"a=b%3Dc")
        assert key(core_module, query=b"a=%2B") != key(core_module, query=b"a=+")

    def test_flag_differs_from_empty_value(self, core_module):
        assert key(core_module, query=b"debug") != key(core_module, query=b"debug=")

    def test_empty_components_are_ignored(self, core_module):
        assert key(core_module, query=b"&a=1&&b=2&") == key(core_module, query=b"b=2&a=1")
        assert key(core_module, query=b"&") == key(core_module, query=None)

    def test_only_vary_parameters_count(self, core_module):
        vary = (b"model", b"page")
        base = key(core_module, query=b"model=gpt&page=2", vary_query_params=vary)
        noisy = key(core_module, query=b"utm=ad&page=2&model=gpt&t=17", vary_query_params=vary)
        assert noisy == base
        assert key(core_module, query=b"model=gpt&page=3", vary_query_params=vary) != base
        assert key(core_module, query=b"m%6Fdel=gpt&page=2", vary_query_params=vary) == base

    def test_empty_vary_list_counts_every_parameter(self, core_module):
        assert key(core_module, query=b"a=1&b=2", vary_query_params=()) != key(
            core_module, query=b"a=1", vary_query_params=()
        )


class TestFields:
    def test_different_hosts_differ(self, core_module):
        assert key(core_module, host=b"a.example") != key(core_module, host=b"b.example")

    def test_host_case_is_ignored(self, core_module):
        assert key(core_module, host=b"API.Example") == key(core_module, host=b"api.example")

    def test_method_path_and_extra_count(self, core_module):
        base = key(core_module)
        assert key(core_module, method=b"HEAD") != base
        assert key(core_module, path=b"/v1/models/") != base
        assert key(core_module, extra=b"consumer-1:route-1") != base

    def test_fields_cannot_bleed_into_each_other(self, core_module):
        assert key(core_module, host=b"ab", path=b"/c") != key(core_module, host=b"a", path=b"b/c")
        assert key(core_module, path=b"/a", extra=b"b") != key(core_module, path=b"/ab", extra=b"")
        long_path = b"/" + b"x" * 5000
        assert key(core_module, path=long_path) != key(core_module, path=long_path + b"x")


class TestVaryHeaders:
    def test_only_vary_headers_count(self, core_module):
        vary = (b"accept",)
        other_language = dict(HEADERS)
        other_language[b"accept-language"] = b"fr"
        assert key(core_module, vary_headers=vary, headers=other_language) == key(
            core_module, vary_headers=vary
        )
        html = dict(HEADERS)
        html[b"accept"] = b"text/html"
        assert key(core_module, vary_headers=vary, headers=html) != key(
            core_module, vary_headers=vary
        )

    def test_absent_header_differs_from_empty_one(self, core_module):
        vary = (b"x-tenant",)
        empty = dict(HEADERS)
        empty[b"x-tenant"] = b""
        absent = {k: v for k, v in HEADERS.items() if k != b"x-tenant"}
        assert key(core_module, vary_headers=vary, headers=empty) != key(
            core_module, vary_headers=vary, headers=absent
        )

    def test_vary_names_normalises_configuration(self, core_module):
        assert core_module.vary_names(["X-Tenant", "accept", b"ACCEPT"]) == (b"accept", b"x-tenant")
        assert core_module.vary_names(["Page", "page"], lowercase=False) == (b"Page", b"page")


@pytest.mark.parametrize("bad", [dict(method="GET"), dict(headers=[(b"a", b"b")])])
def test_wrong_types_are_rejected_when_compiled(load_core, bad):
    with pytest.raises(TypeError):
        key(load_core(CORE_MODULE, "compiled"), **bad)
