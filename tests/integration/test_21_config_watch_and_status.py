"""Operations on one instance: the config file watched and reloaded when it
changes (a Kubernetes ConfigMap update swaps a symlink), and the read-only
status API for probes and scrapers."""

import os
import time

import orjson
import yaml

from fastgw.testing import GatewayProcess, free_port, http_request, service_doc


def config_hash(gw):
    return orjson.loads(gw.admin("GET", "/status")[2])["config_hash"]


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_watched_config_file_is_reloaded_when_it_changes(upstream):
    def doc(route):
        base = service_doc(upstream.port, routes=[{"name": route, "paths": [f"/{route}"]}])
        return {**base, "_gateway": {"watch_config": 0.1}}

    with GatewayProcess(doc("first")) as gw:
        first = config_hash(gw)
        gw.write_config(doc("second"))
        assert wait_for(lambda: gw.request("GET", "/second")[0] == 200)
        second = config_hash(gw)
        assert second != first and gw.request("GET", "/first")[0] == 404
        # A file that does not load is refused, once; the running config stays.
        with open(gw.config_path, "w") as file:
            file.write("_format_version: '3.0'\nservices: [{name: broken}]\n")
        assert wait_for(lambda: "reload refused" in gw.logs())
        time.sleep(0.3)
        assert gw.logs().count("reload refused") == 1
        assert config_hash(gw) == second and gw.request("GET", "/second")[0] == 200
        # As Kubernetes updates a mounted ConfigMap: the file becomes a
        # symlink to a new data directory, swapped in one rename.
        data = os.path.join(gw.dir.name, "..2026_12_07_data")
        os.mkdir(data)
        with open(os.path.join(data, "fastgw.yaml"), "w") as file:
            yaml.safe_dump(doc("third"), file)
        link = gw.config_path + ".tmp"
        os.symlink(os.path.join(data, "fastgw.yaml"), link)
        os.replace(link, gw.config_path)
        assert wait_for(lambda: gw.request("GET", "/third")[0] == 200)


def test_the_status_api_serves_probes_and_scrapers_without_the_token(upstream):
    status_port = free_port()
    doc = service_doc(upstream.port)
    doc["_gateway"] = {"status_listen": f"127.0.0.1:{status_port}", "admin_token": "s3cret"}
    with GatewayProcess(doc) as gw:
        assert gw.admin("GET", "/status")[0] == 401  # the admin API still needs it
        status, _, body = http_request(status_port, "GET", "/status")
        assert status == 200 and orjson.loads(body)["workers"] == 1
        status, _, body = http_request(status_port, "GET", "/status/ready")
        assert (status, orjson.loads(body)) == (200, {"message": "ready"})
        status, _, body = http_request(status_port, "GET", "/metrics")
        assert status == 200 and b"fastgw_workers" in body
        # Nothing that writes, nothing but these reads.
        assert http_request(status_port, "GET", "/config")[0] == 404
        assert http_request(status_port, "POST", "/config", b"{}",
                            {"Content-Type": "application/json"})[0] == 404
        assert http_request(status_port, "DELETE", "/status")[0] == 405
