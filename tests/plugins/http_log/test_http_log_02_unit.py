"""http-log's handler, queue and client against a local log endpoint: what is
sent and how, batching, retries, and what a dead or hanging endpoint costs."""

import asyncio
import base64
import logging
import time

import orjson
import pytest

from fastgw.plugins.context import make_context, set_response
from fastgw.plugins.http_log import handler as http_log_handler
from fastgw.plugins.http_log import queue as http_log_queue
from fastgw.plugins.http_log.queue import LogQueue
from fastgw.testing import free_port


def request_context(request_id: str, status: int = 200):
    ctx = make_context("GET", f"/items/{request_id}?q=1", {"Host": "api.test", "X-A": "b"},
                       request_id=request_id)
    set_response(ctx, status, {"Content-Type": "text/plain"})
    return ctx


def run(coro, timeout: float = 20.0):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def endpoint(server, path="/logs", userinfo=""):
    return f"http://{userinfo}127.0.0.1:{server.port}{path}"


def test_each_entry_is_sent_as_one_json_object_over_one_connection(build_http_log, collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector, "/in?src=gw"),
                             "headers": {"X-Api-Key": "k1"}})
    contexts = [request_context(f"r{i}") for i in range(3)]

    async def scenario():
        for ctx in contexts:
            plugin.log(ctx)
        await wait_until(lambda: len(collector.requests) == 3)

    run(scenario())
    for ctx, received in zip(contexts, collector.requests, strict=True):
        assert received.method == "POST"
        assert received.target == "/in?src=gw"
        assert received.body == orjson.dumps(ctx.log_entry())
        assert received.header("content-type") == "application/json"
        assert received.header("content-length") == str(len(received.body))
        assert received.header("host") == f"127.0.0.1:{collector.port}"
        assert received.header("x-api-key") == "k1"
        assert received.header("user-agent").startswith("fastgw/")
        assert received.header("authorization") is None
    assert collector.connections == 1  # kept alive between batches
    assert plugin.queue.stats() == {"name": f"http://127.0.0.1:{collector.port}/in",
                                    "queued": 0, "bytes": 0, "sent": 3, "dropped": 0, "lost": 0}


def test_user_info_becomes_basic_auth_and_method_and_type_follow_the_config(build_http_log,
                                                                            collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector, userinfo="bob:p%40ss@"),
                             "method": "PUT", "content_type": "application/json; charset=utf-8",
                             "custom_fields": {"source.gateway": "eu-1"}})

    async def scenario():
        plugin.log(request_context("r1"))
        await wait_until(lambda: collector.requests)

    run(scenario())
    received = collector.requests[0]
    assert received.method == "PUT"
    assert received.header("content-type") == "application/json; charset=utf-8"
    assert received.header("authorization") == "Basic " + base64.b64encode(b"bob:p@ss").decode()
    assert orjson.loads(received.body)["source"] == {"gateway": "eu-1"}
    assert "bob" not in plugin.queue.name  # never printed in logs


def test_batches_are_json_arrays_sent_when_full_or_after_the_coalescing_delay(build_http_log,
                                                                              collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector),
                             "queue": {"max_batch_size": 3, "max_coalescing_delay": 0.4}})
    arrivals = []

    async def scenario():
        started = time.monotonic()
        for i in range(7):
            plugin.log(request_context(f"r{i}"))
        await wait_until(lambda: len(collector.requests) == 2)
        arrivals.append(time.monotonic() - started)
        await wait_until(lambda: len(collector.requests) == 3)
        arrivals.append(time.monotonic() - started)

    run(scenario())
    batches = [[entry["request"]["id"] for entry in orjson.loads(r.body)]
               for r in collector.requests]
    assert batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert arrivals[0] < 0.3  # full batches do not wait
    assert arrivals[1] >= 0.35  # the partial one waits for the delay


def test_a_failed_batch_is_retried_until_it_goes_through(build_http_log, collector):
    answers = iter([b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nnope"] * 2)

    async def flaky(req, writer):
        writer.write(next(answers, b"HTTP/1.1 204 No Content\r\n\r\n"))

    collector.handler = flaky
    plugin = build_http_log({"http_endpoint": endpoint(collector),
                             "queue": {"initial_retry_delay": 0.02}})

    async def scenario():
        plugin.log(request_context("first"))
        plugin.log(request_context("second"))
        await wait_until(lambda: plugin.queue.sent == 2)

    run(scenario())
    ids = [orjson.loads(r.body)["request"]["id"] for r in collector.requests]
    assert ids == ["first", "first", "first", "second"]
    assert plugin.queue.lost == 0


def test_a_batch_is_given_up_after_max_retry_time(build_http_log, collector, caplog):
    async def refuse(req, writer):
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy")

    collector.handler = refuse
    plugin = build_http_log({"http_endpoint": endpoint(collector), "queue": {
        "max_retry_time": 0.2, "initial_retry_delay": 0.05, "max_retry_delay": 0.1}})
    lost_before = http_log_queue.TOTALS["lost"]

    async def scenario():
        plugin.log(request_context("r1"))
        await wait_until(lambda: plugin.queue.lost == 1)

    with caplog.at_level(logging.ERROR, logger="fastgw.plugins.http_log"):
        run(scenario())
    # Tries at about 0, 0.05 and 0.15 s; one more (after 0.1 s) would pass 0.2 s.
    assert len(collector.requests) == 3
    assert http_log_queue.TOTALS["lost"] == lost_before + 1
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == (f"http-log: queue http://127.0.0.1:{collector.port}/logs: could not send "
                       f"1 entries after 3 attempts, giving up: request to 127.0.0.1:"
                       f"{collector.port} returned status code 503 and body 'busy'")


def test_no_retry_when_max_retry_time_is_zero(build_http_log, collector):
    async def refuse(req, writer):
        writer.write(b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n")

    collector.handler = refuse
    plugin = build_http_log({"http_endpoint": endpoint(collector),
                             "queue": {"max_retry_time": 0}})

    async def scenario():
        plugin.log(request_context("r1"))
        await wait_until(lambda: plugin.queue.lost == 1)

    run(scenario())
    assert len(collector.requests) == 1


def test_a_dead_endpoint_costs_the_log_phase_nothing_and_drops_are_counted(build_http_log,
                                                                           caplog):
    plugin = build_http_log({"http_endpoint": f"http://127.0.0.1:{free_port()}/",
                             "timeout": 1000, "queue": {"max_entries": 10}})
    contexts = [request_context(f"r{i}") for i in range(2000)]
    dropped_before = http_log_queue.TOTALS["dropped"]
    durations = []

    async def scenario():
        for ctx in contexts:
            started = time.perf_counter()
            plugin.log(ctx)
            durations.append(time.perf_counter() - started)
        # The sender has not run yet: all but the last 10 were dropped.
        assert plugin.queue.dropped == 1990
        assert [orjson.loads(e)["request"]["id"] for e in plugin.queue.entries] == [
            f"r{i}" for i in range(1990, 2000)]
        await asyncio.sleep(0.1)  # connection refused, retrying: nothing blocks
        started = time.perf_counter()
        plugin.log(request_context("late"))
        durations.append(time.perf_counter() - started)

    with caplog.at_level(logging.WARNING, logger="fastgw.plugins.http_log"):
        run(scenario())
    durations.sort()
    # Serialising and appending: tens of microseconds; generous bounds for a
    # busy 2-core machine, far below one connection attempt or timeout.
    assert durations[len(durations) // 2] < 0.001
    assert durations[-1] < 0.05
    assert http_log_queue.TOTALS["dropped"] >= dropped_before + 1990
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    queue_name = plugin.queue.name
    assert warnings == [
        f"http-log: queue {queue_name} is full (max_entries=10, max_bytes=None): "
        f"{count} entries dropped so far" for count in (1, 1000)]


def test_a_hanging_endpoint_times_out_while_requests_keep_logging(build_http_log,
                                                                   hanging_endpoint):
    plugin = build_http_log({"http_endpoint": endpoint(hanging_endpoint), "timeout": 200,
                             "queue": {"max_retry_time": 0.5, "initial_retry_delay": 0.05,
                                       "max_entries": 5}})
    slowest = 0.0

    async def scenario():
        nonlocal slowest
        plugin.log(request_context("stuck"))
        for i in range(40):  # 0.6 s of traffic while the sender waits
            started = time.perf_counter()
            plugin.log(request_context(f"r{i}"))
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.015)
        await wait_until(lambda: plugin.queue.lost >= 1, timeout=3)

    run(scenario())
    assert slowest < 0.05
    # The first batch was tried on fresh connections (attempts at ~0, ~0.25 s)
    # then given up; meanwhile the queue kept its newest 5 entries.
    assert plugin.queue.lost >= 1
    assert plugin.queue.dropped >= 30
    assert hanging_endpoint.connections >= 2
    assert orjson.loads(hanging_endpoint.requests[0].body)["request"]["id"] == "stuck"


def test_max_bytes_keeps_the_newest_entries_that_fit():
    async def never(batch):
        raise AssertionError("no sender runs outside an event loop")

    queue = LogQueue("q", never, max_entries=100, max_bytes=35)
    for i in range(5):
        queue.put(b"entry-%04d" % i)  # 10 bytes each
    assert list(queue.entries) == [b"entry-0002", b"entry-0003", b"entry-0004"]
    assert queue.bytes == 30 and queue.dropped == 2
    queue.put(b"x" * 36)  # larger than the whole queue may be: dropped at once
    assert len(queue.entries) == 3 and queue.dropped == 3


def test_entries_queued_outside_a_loop_are_sent_by_the_next_put_inside_one(collector,
                                                                           build_http_log):
    plugin = build_http_log({"http_endpoint": endpoint(collector, "/late")})
    plugin.log(request_context("early"))  # no running loop: waits in the queue

    async def scenario():
        plugin.log(request_context("later"))
        await wait_until(lambda: len(collector.requests) == 2)

    run(scenario())
    assert [orjson.loads(r.body)["request"]["id"] for r in collector.requests] == [
        "early", "later"]


def test_a_kept_alive_connection_closed_by_the_server_is_replaced(build_http_log, collector,
                                                                 caplog):
    async def answer_and_close(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    collector.handler = answer_and_close
    plugin = build_http_log({"http_endpoint": endpoint(collector)})

    async def scenario():
        for i in range(3):
            plugin.log(request_context(f"r{i}"))
            await wait_until(lambda n=i: plugin.queue.sent == n + 1)
            await asyncio.sleep(0.02)  # let the close reach the client

    with caplog.at_level(logging.DEBUG, logger="fastgw.plugins.http_log"):
        run(scenario())
    assert caplog.records == []  # replaced at once, not through a failure and a retry
    assert len(collector.requests) == 3  # no entry was sent twice
    assert collector.connections == 3
    assert plugin.queue.lost == 0


def test_an_answer_framed_by_the_end_of_the_connection_counts(build_http_log, collector):
    async def unframed(req, writer):
        writer.write(b"HTTP/1.1 200 OK\r\n\r\naccepted")
        await writer.drain()
        writer.close()

    collector.handler = unframed
    plugin = build_http_log({"http_endpoint": endpoint(collector)})

    async def scenario():
        plugin.log(request_context("r1"))
        plugin.log(request_context("r2"))
        await wait_until(lambda: plugin.queue.sent == 2)

    run(scenario())
    assert plugin.queue.lost == 0 and collector.connections == 2


def test_keepalive_zero_asks_for_a_new_connection_each_time(build_http_log, collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector), "keepalive": 0})

    async def scenario():
        plugin.log(request_context("r1"))
        plugin.log(request_context("r2"))
        await wait_until(lambda: plugin.queue.sent == 2)

    run(scenario())
    assert [r.header("connection") for r in collector.requests] == ["close", "close"]
    assert collector.connections == 2


def test_an_idle_connection_is_not_reused_after_keepalive(build_http_log, collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector), "keepalive": 100})

    async def scenario():
        plugin.log(request_context("r1"))
        plugin.log(request_context("r2"))
        await wait_until(lambda: plugin.queue.sent == 2)
        assert collector.connections == 1
        await asyncio.sleep(0.2)
        plugin.log(request_context("r3"))
        await wait_until(lambda: plugin.queue.sent == 3)

    run(scenario())
    assert collector.connections == 2


def test_flush_sends_a_partial_batch_at_once(build_http_log, collector):
    plugin = build_http_log({"http_endpoint": endpoint(collector),
                             "queue": {"max_batch_size": 100, "max_coalescing_delay": 60}})

    async def scenario():
        for i in range(3):
            plugin.log(request_context(f"r{i}"))
        await asyncio.sleep(0.05)
        assert collector.requests == []  # waiting for the batch to fill
        started = time.monotonic()
        assert await plugin.queue.flush(timeout=5) is True
        return time.monotonic() - started

    assert run(scenario()) < 1
    assert len(orjson.loads(collector.requests[0].body)) == 3


def test_flush_all_flushes_every_live_queue(build_http_log, collector, monkeypatch):
    monkeypatch.setattr(http_log_handler, "_QUEUES", http_log_handler.weakref.WeakValueDictionary())
    batched = {"max_batch_size": 10, "max_coalescing_delay": 60}
    plugins = [build_http_log({"http_endpoint": endpoint(collector, f"/all{i}"),
                               "queue": batched}) for i in range(2)]

    async def scenario():
        for plugin in plugins:
            plugin.log(request_context("r"))
        return await http_log_handler.flush_all(timeout=5)

    assert run(scenario()) is True
    assert sorted(r.target for r in collector.requests) == ["/all0", "/all1"]


def test_flush_reports_a_timeout(build_http_log, hanging_endpoint):
    plugin = build_http_log({"http_endpoint": endpoint(hanging_endpoint), "timeout": 5000})

    async def scenario():
        plugin.log(request_context("r1"))
        return await plugin.queue.flush(timeout=0.1)

    assert run(scenario()) is False


def test_equal_configs_share_a_queue_and_its_counters(build_http_log, collector):
    config = {"http_endpoint": endpoint(collector, "/shared")}
    first, second = build_http_log(config), build_http_log(dict(config))
    other = build_http_log({**config, "method": "PUT"})
    assert first.queue is second.queue
    assert other.queue is not first.queue
    names = [stats["name"] for stats in http_log_handler.queue_stats()]
    assert names.count(first.queue.name) >= 2  # both live queues are listed


def test_a_queue_nobody_uses_is_freed(build_http_log, collector):
    import gc

    plugin = build_http_log({"http_endpoint": endpoint(collector, "/freed")})
    name = plugin.queue.name
    del plugin
    gc.collect()
    assert name not in [stats["name"] for stats in http_log_handler.queue_stats()]


def test_the_sender_stops_when_idle_and_restarts_on_the_next_entry(build_http_log, collector,
                                                                  monkeypatch):
    monkeypatch.setattr(http_log_queue, "IDLE_EXIT", 0.1)
    plugin = build_http_log({"http_endpoint": endpoint(collector, "/idle")})
    queue = plugin.queue

    async def scenario():
        plugin.log(request_context("r1"))
        await wait_until(lambda: queue.sent == 1)
        task = queue._task
        await wait_until(task.done, timeout=2)
        assert task.exception() is None
        plugin.log(request_context("r2"))
        await wait_until(lambda: queue.sent == 2)
        assert queue._task is not task

    run(scenario())
    assert collector.connections == 2  # the idle stop closed the first connection


@pytest.mark.parametrize("max_batch_size, expected", [(1, dict), (2, list)])
def test_payload_shape_follows_the_configured_batch_size(build_http_log, collector,
                                                         max_batch_size, expected):
    plugin = build_http_log({"http_endpoint": endpoint(collector, f"/shape{max_batch_size}"),
                             "queue": {"max_batch_size": max_batch_size,
                                       "max_coalescing_delay": 0}})

    async def scenario():
        plugin.log(request_context("only"))
        await wait_until(lambda: collector.requests)

    run(scenario())
    assert type(orjson.loads(collector.requests[0].body)) is expected
