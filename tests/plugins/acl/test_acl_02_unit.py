"""acl handler on unit contexts: allow and deny lists, whose groups count,
the groups headers and Kong's 401/403 answers."""

import orjson
import pytest

from fastgw.plugins.context import make_context

CREDENTIAL = {"key": "some-key"}


def request_as(handler, username=None, *, anonymous=False, groups=None, credential=None):
    """A context identified as ``username`` (None: nobody), with the
    ``groups`` and bare ``credential`` another auth plugin may leave, run
    through acl."""
    ctx = make_context(headers={"X-Consumer-Groups": "admin"})  # a client's forgery
    if username is not None:
        consumer = handler.state.consumer(username)
        ctx.authenticate(consumer, None if anonymous else CREDENTIAL, anonymous=anonymous)
    if credential is not None:
        ctx.credential = credential
    ctx.authenticated_groups = groups
    assert handler.access(ctx) is None
    return ctx


def assert_answer(ctx, status, message):
    assert ctx.exit_status == status
    assert orjson.loads(ctx.exit_body) == {"message": message}


@pytest.mark.parametrize(("config", "username", "allowed"), [
    ({"allow": ["gold"]}, "alice", True),
    ({"allow": ["silver", "beta"]}, "alice", True),
    ({"allow": ["gold"]}, "bob", False),
    ({"allow": ["gold"]}, "carol", False),  # no groups at all
    ({"deny": ["silver"]}, "bob", False),
    ({"deny": ["silver"]}, "alice", True),
    ({"deny": ["silver"]}, "carol", True),
    ({"allow": ["Gold"]}, "alice", False),  # group names are case-sensitive
])
def test_allow_and_deny(acl, config, username, allowed):
    handler = acl(**config)
    for _ in range(2):  # the second time uses the cached verdict
        ctx = request_as(handler, username)
        if allowed:
            assert not ctx.exited
        else:
            assert_answer(ctx, 403, "You cannot consume this service")


def test_consumer_groups_go_upstream_replacing_a_forged_header(acl):
    ctx = request_as(acl(allow=["gold"]), "alice")
    assert ctx.request.headers.get_all("X-Consumer-Groups") == ["gold, beta"]


def test_hide_groups_header(acl):
    ctx = request_as(acl(allow=["gold"], hide_groups_header=True), "alice")
    assert not ctx.exited
    assert ctx.request.headers.get_all("X-Consumer-Groups") == ["admin"]


def test_a_consumer_without_groups_sends_no_groups_header(acl):
    ctx = request_as(acl(deny=["silver"]), "carol")
    assert not ctx.exited
    assert ctx.request.headers.get_all("X-Consumer-Groups") == ["admin"]


def test_no_consumer_is_unauthorized(acl):
    assert_answer(request_as(acl(allow=["gold"])), 401, "Unauthorized")


def test_a_credential_without_consumer_is_forbidden(acl):
    ctx = request_as(acl(allow=["gold"]), credential={"sub": "external"})
    assert_answer(ctx, 403, "You cannot consume this service")


def test_anonymous_consumers_use_their_own_groups(acl):
    assert not request_as(acl(allow=["guest"]), "anonymous", anonymous=True).exited
    ctx = request_as(acl(allow=["gold"]), "anonymous", anonymous=True)
    assert_answer(ctx, 403, "You cannot consume this service")


def test_authenticated_groups_without_consumer(acl):
    ctx = request_as(acl(allow=["ops"]), groups=["ops", "dev"])
    assert not ctx.exited
    assert ctx.request.headers.get("X-Authenticated-Groups") == "ops, dev"
    ctx = request_as(acl(allow=["ops"]), groups=["dev"])
    assert_answer(ctx, 403, "You cannot consume this service")


def test_authenticated_groups_override_an_anonymous_consumer(acl):
    ctx = request_as(acl(allow=["ops"]), "anonymous", anonymous=True, groups=["ops"])
    assert not ctx.exited
    assert ctx.request.headers.get("X-Authenticated-Groups") == "ops"


def test_authenticated_groups_override_a_real_consumer_only_when_asked(acl):
    ctx = request_as(acl(allow=["ops"]), "alice", groups=["ops"])
    assert_answer(ctx, 403, "You cannot consume this service")
    ctx = request_as(acl(allow=["ops"], always_use_authenticated_groups=True), "alice",
                     groups=["ops"])
    assert not ctx.exited
    assert ctx.request.headers.get("X-Authenticated-Groups") == "ops"
    # Without authenticated groups the consumer's own groups still decide.
    ctx = request_as(acl(allow=["gold"], always_use_authenticated_groups=True), "alice")
    assert not ctx.exited
