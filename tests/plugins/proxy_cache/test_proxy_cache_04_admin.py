"""The admin API purges proxy-cache entries in every worker."""

import http.client

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


def fresh_get(port, path):
    # A new connection each time, so requests spread over the workers.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": "a"})
    resp = conn.getresponse()
    resp.read()
    status = resp.getheader("X-Cache-Status")
    key = resp.getheader("X-Cache-Key")
    conn.close()
    return status, key


def test_delete_one_key_and_everything():
    with UpstreamServer() as up:
        doc = service_doc(up.port)
        doc["plugins"] = [{"name": "proxy-cache", "config": {
            "strategy": "memory", "content_type": ["application/json"]}}]
        with GatewayProcess(doc, workers=2) as gw:
            # Warm both workers' caches for two paths.
            seen = {"/a": set(), "/b": set()}
            keys = {}
            for _ in range(20):
                for path in seen:
                    status, key = fresh_get(gw.port, path)
                    seen[path].add(status)
                    keys[path] = key
            assert seen["/a"] >= {"Miss", "Hit"}
            code, _, _ = gw.admin("DELETE", f"/proxy-cache/{keys['/a']}")
            assert code == 204
            after_a = {fresh_get(gw.port, "/a")[0] for _ in range(8)}
            assert "Miss" in after_a
            assert {fresh_get(gw.port, "/b")[0] for _ in range(8)} == {"Hit"}
            code, _, body = gw.admin("DELETE", "/proxy-cache/no-such-key")
            assert code == 404
            code, _, _ = gw.admin("DELETE", "/proxy-cache")
            assert code == 204
            assert "Miss" in {fresh_get(gw.port, "/b")[0] for _ in range(8)}
            code, _, _ = gw.admin("GET", "/proxy-cache")
            assert code == 405
