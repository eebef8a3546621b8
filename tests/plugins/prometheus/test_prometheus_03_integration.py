"""Exact counts scraped after requests spread over two workers."""

import http.client
import re

from fastgw.testing import GatewayProcess, UpstreamServer, service_doc


def sample(text: str, name: str, **labels) -> float:
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} {labels} not in metrics"
    return total


def test_exact_counts_across_two_workers():
    async def handler(req, writer):
        status = 404 if req.target.startswith("/missing") else 200
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok" % status)

    with UpstreamServer(handler) as up:
        doc = service_doc(up.port, routes=[{"name": "chat", "paths": ["/v1"]},
                                           {"name": "other", "paths": ["/other"]}])
        doc["plugins"] = [{"name": "prometheus", "config": {
            "status_code_metrics": True, "latency_metrics": True, "bandwidth_metrics": True}}]
        with GatewayProcess(doc, workers=2) as gw:
            # Fresh connections, so the kernel spreads them over both workers.
            for i in range(30):
                conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
                conn.request("GET", "/v1/missing" if i % 3 == 0 else "/v1/ok")
                conn.getresponse().read()
                conn.close()
            for _ in range(7):
                gw.request("GET", "/other")
            for _ in range(4):
                gw.request("GET", "/nowhere")
            _, _, body = gw.admin("GET", "/metrics")
            _, _, status = gw.admin("GET", "/status")
    text = body.decode()
    assert sample(text, "fastgw_workers") == 2
    per_worker = [float(x) for x in re.findall(r'fastgw_worker_requests_total\{worker="\d"\} (\S+)', text)]
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker)
    # The upstream's 404s are counted as such (the upstream answered them).
    assert sample(text, "fastgw_http_requests_total", route="chat", code="200") == 20
    assert sample(text, "fastgw_http_requests_total", route="chat", code="404") == 10
    assert sample(text, "fastgw_http_requests_total", route="other", code="200") == 7
    # Requests no route matched are counted under empty labels.
    assert sample(text, "fastgw_http_requests_total", route="", code="404") == 4
    assert sample(text, "fastgw_request_latency_ms_count", route="chat") == 30
    assert sample(text, "fastgw_request_latency_ms_bucket", route="chat", le="+Inf") == 30
    assert sample(text, "fastgw_upstream_latency_ms_count", route="chat") == 30
    assert sample(text, "fastgw_bandwidth_bytes_total", route="chat", direction="egress") > 0
    assert sample(text, "fastgw_connections", state="active") >= 0
