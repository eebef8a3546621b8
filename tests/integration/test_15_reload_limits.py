"""A reload may not change what the running gateway was started with (its
listeners, its worker count, its TLS): such a swap is refused with an error
naming each field, and the running config stays."""

import asyncio

from fastgw.config.loader import parse_config, with_overrides
from fastgw.supervisor import Supervisor
from fastgw.testing import service_doc


def supervisor(gateway: dict, overrides: dict | None = None) -> Supervisor:
    doc = service_doc(9)
    doc["_gateway"] = gateway
    config = parse_config(doc)
    return Supervisor(config, None, config.gateway.listen, config.gateway.admin_listen,
                      config.gateway.workers or 1, overrides)


def swap(sup: Supervisor, gateway: dict) -> tuple[bool, list[str]]:
    doc = service_doc(9)
    doc["_gateway"] = gateway
    return asyncio.run(sup.swap(doc))


def test_changing_listeners_or_workers_is_refused_naming_each_field():
    sup = supervisor({"listen": "127.0.0.1:8000", "workers": 2})
    before = sup.config
    ok, errors = swap(sup, {"listen": "127.0.0.1:9000", "admin_listen": "127.0.0.1:9001",
                            "workers": 3})
    assert not ok
    assert errors == [
        "_gateway.listen: changed from 127.0.0.1:8000 to 127.0.0.1:9000, which needs a "
        "restart; the running config stays",
        "_gateway.admin_listen: changed from 127.0.0.1:8001 to 127.0.0.1:9001, which needs a "
        "restart; the running config stays",
        "_gateway.workers: changed from 2 to 3, which needs a restart; the running config stays",
    ]
    assert sup.config is before


def test_settings_given_by_flags_win_over_the_file_on_reload_too():
    # --workers 2 was given: the file's workers does not change anything.
    sup = supervisor({"workers": 2}, overrides={"workers": 2})
    assert sup.restart_only_changes(with_overrides(parse_config(
        {**service_doc(9), "_gateway": {"workers": 5}}), sup.overrides)) == []
