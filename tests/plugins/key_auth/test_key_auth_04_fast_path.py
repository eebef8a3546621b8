"""On a route where key-auth is the only Python plugin, a known key in a
header is accepted from the core without a request context; everything else
falls back to the plugin. Both paths must look the same to the upstream and
to the client."""

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc

CONSUMERS = [{"username": "alice", "custom_id": "a-1",
              "keyauth_credentials": [{"id": "6f1c8a3e-2b4d-4e5f-9a8b-7c6d5e4f3a21",
                                       "key": "alice-key"}]}]
IDENTITY = ("x-consumer-id", "x-consumer-custom-id", "x-consumer-username",
            "x-credential-identifier", "x-anonymous-consumer")


def test_fast_and_plugin_paths_are_alike():
    with UpstreamServer() as up:
        doc = service_doc(up.port, routes=[
            {"name": "fast", "paths": ["/fast"], "plugins": [{"name": "key-auth"}]},
            {"name": "slow", "paths": ["/slow"],
             "plugins": [{"name": "key-auth"}, {"name": "correlation-id"}]}])
        doc["consumers"] = CONSUMERS
        cases = [
            {"apikey": "alice-key"},
            {"apikey": "alice-key", "X-Consumer-Username": "mallory"},  # spoofed identity
            {"apikey": "wrong"},
            {},
        ]
        with GatewayProcess(doc) as gw:
            for headers in cases:
                answers = {}
                for path in ("/fast", "/slow"):
                    before = len(up.requests)
                    status, resp_headers, body = gw.request("GET", path, headers=headers)
                    seen = up.requests[-1] if len(up.requests) > before else None
                    answers[path] = (status, body, resp_headers.get("www-authenticate"),
                                     {n: seen.header_all(n) for n in IDENTITY} if seen else None)
                assert answers["/fast"] == answers["/slow"], headers
            fast_ok = gw.request("GET", "/fast", headers={"apikey": "alice-key"})
    assert fast_ok[0] == 200
    alice = up.requests[-1]
    assert alice.header_all("x-consumer-username") == ["alice"]
    assert alice.header("x-credential-identifier") == "6f1c8a3e-2b4d-4e5f-9a8b-7c6d5e4f3a21"


def test_query_keys_and_preflight_still_work_on_the_fast_route():
    with UpstreamServer() as up:
        doc = service_doc(up.port, routes=[
            {"name": "fast", "paths": ["/fast"], "plugins": [{"name": "key-auth"}]}])
        doc["consumers"] = CONSUMERS
        with GatewayProcess(doc) as gw:
            assert gw.request("GET", "/fast?apikey=alice-key")[0] == 200
            assert gw.request("GET", "/fast?other=1")[0] == 401
            assert gw.request("OPTIONS", "/fast")[0] == 401
    assert up.requests[0].header("x-consumer-username") == "alice"
