"""ip-restriction handler: deny before allow, CIDRs of both IP versions."""

import orjson
import pytest

from fastgw.plugins.context import make_context


def access(plugin, client_ip):
    ctx = make_context(client_ip=client_ip)
    assert plugin.access(ctx) is None  # synchronous
    return ctx


def test_priority_is_kongs(handler):
    assert handler(allow=["::1"]).PRIORITY == 990


@pytest.mark.parametrize(("client_ip", "allowed"), [
    ("10.1.2.3", True), ("10.255.255.255", True), ("11.0.0.1", False),
    ("192.168.1.7", True), ("192.168.1.8", False),
    ("2001:db8:abcd::1", True), ("2001:db9::1", False),
    ("::ffff:10.9.9.9", True),  # an IPv4 client seen by a dual-stack listener
])
def test_allow_list(handler, client_ip, allowed):
    plugin = handler(allow=["10.0.0.0/8", "192.168.1.7", "2001:db8::/32"])
    ctx = access(plugin, client_ip)
    if allowed:
        assert not ctx.exited
    else:
        assert ctx.exit_status == 403
        assert orjson.loads(ctx.exit_body) == {"message": "IP address not allowed"}


def test_deny_list_refuses_only_listed_clients(handler):
    plugin = handler(deny=["10.0.0.0/8", "::1"])
    assert access(plugin, "10.0.0.1").exit_status == 403
    assert access(plugin, "::1").exit_status == 403
    assert not access(plugin, "11.0.0.1").exited
    assert not access(plugin, "::2").exited


def test_deny_wins_over_allow(handler):
    plugin = handler(allow=["10.0.0.0/8"], deny=["10.0.0.5"])
    assert access(plugin, "10.0.0.5").exit_status == 403
    assert not access(plugin, "10.0.0.6").exited


def test_host_bits_of_a_range_are_ignored(handler):
    plugin = handler(allow=["172.16.5.9/16"])
    assert not access(plugin, "172.16.200.1").exited
    assert access(plugin, "172.17.0.1").exited


def test_status_and_message_are_configurable(handler):
    plugin = handler(deny=["0.0.0.0/0"], status=401, message="Nope")
    ctx = access(plugin, "8.8.8.8")
    assert ctx.exit_status == 401
    assert orjson.loads(ctx.exit_body) == {"message": "Nope"}
    assert ctx.exit_headers["Content-Type"].startswith("application/json")


def test_a_client_without_an_ip_address_is_refused(handler):
    ctx = access(handler(deny=["10.0.0.1"]), "unix:")
    assert ctx.exit_status == 403
    assert orjson.loads(ctx.exit_body) == {
        "message": "Cannot identify the client IP address, unix domain sockets are not supported."
    }
