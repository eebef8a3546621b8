"""correlation-id handler: ids generated when missing, kept when sent, echoed
downstream on request, distinct across forked workers."""

import os
import re
import uuid

import pytest

from fastgw.plugins.context import make_context, set_response

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def run(plugin, headers=None, exit_first=False):
    """access (unless another plugin answered first), then header_filter."""
    ctx = make_context("GET", "/", headers or {})
    if not exit_first:
        assert plugin.access(ctx) is None
    set_response(ctx, 200, {})
    plugin.header_filter(ctx)
    return ctx


def test_priority_runs_before_every_other_plugin(handler):
    assert handler().PRIORITY == 100001


def test_uuid_counter_ids_share_a_worker_uuid_and_count_up(handler):
    plugin = handler()
    first = run(plugin).request.headers.get("Kong-Request-ID")
    second = run(plugin).request.headers.get("Kong-Request-ID")
    match_first = re.fullmatch(rf"({UUID})#(\d+)", first)
    match_second = re.fullmatch(rf"({UUID})#(\d+)", second)
    assert match_first and match_second
    assert match_first[1] == match_second[1]
    assert int(match_second[2]) == int(match_first[2]) + 1


def test_uuid_generator(handler):
    ids = {run(handler(generator="uuid")).request.headers.get("Kong-Request-ID")
           for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(UUID, value) for value in ids)


def test_tracker_generator(handler):
    ctx = run(handler(generator="tracker"))
    value = ctx.request.headers.get("Kong-Request-ID")
    assert re.fullmatch(rf"0\.0\.0\.0-8000-{os.getpid()}-\d+-1-\d+\.\d{{3}}", value)


def test_an_id_sent_by_the_client_is_kept(handler):
    ctx = run(handler(header_name="X-Correlation-ID", echo_downstream=True),
              {"x-correlation-id": "client-1"})
    assert ctx.request.headers.get_all("X-Correlation-ID") == ["client-1"]
    assert ctx.response.headers.get("X-Correlation-ID") == "client-1"
    assert ctx.log_entry()["correlation_id"] == "client-1"


def test_an_empty_id_is_replaced(handler):
    ctx = run(handler(generator="uuid"), {"Kong-Request-ID": ""})
    assert re.fullmatch(UUID, ctx.request.headers.get("Kong-Request-ID"))


def test_echo_downstream_sends_the_same_id_back(handler):
    ctx = run(handler(echo_downstream=True))
    sent = ctx.request.headers.get("Kong-Request-ID")
    assert ctx.response.headers.get("Kong-Request-ID") == sent
    assert ctx.log_fields == {"correlation_id": sent}


def test_without_echo_the_response_is_untouched(handler):
    assert run(handler()).response.headers.pairs() == []


def test_an_answer_given_before_access_still_gets_an_id(handler):
    ctx = run(handler(generator="uuid", echo_downstream=True), exit_first=True)
    assert uuid.UUID(ctx.response.headers.get("Kong-Request-ID"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_workers_draw_different_worker_uuids(handler):
    plugin = handler()
    parent = run(plugin).request.headers.get("Kong-Request-ID").split("#")[0]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports its id and leaves at once
        try:
            os.write(write_end, run(plugin).request.headers.get("Kong-Request-ID").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 200).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert child.endswith("#1")
    assert child.split("#")[0] != parent
