"""ai-proxy's handler on unit contexts: the provider request it builds, the
rules it applies, and how it translates answers, streams and errors back."""

import gzip

import orjson
import pytest
from ai_proxy_kit import PROVIDER_KEY, body_of, chat_config, run_access

from fastgw.ai import metrics
from fastgw.plugins.context import make_context, set_response

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
ANTHROPIC_ANSWER = {
    "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
    "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 1000, "output_tokens": 500},
}  # fmt: skip
OPENAI_ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test-0613",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}  # fmt: skip


def openai_event(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
             "model": "gpt-test", "choices": [] if delta is None else
             [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


OPENAI_STREAM = [
    openai_event({"role": "assistant", "content": "Sun"}),
    openai_event({"content": "ny."}, "stop"),
    openai_event(None, usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}),
    b"data: [DONE]\n\n",
]


def request(body, headers=None, url="/v1/chat/completions", raw=None):
    data = raw if raw is not None else orjson.dumps(body)
    base = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    return make_context("POST", url, {**base, **(headers or {})}, body=data)


def sent(handler, body=None, headers=None, before=None, **kw):
    ctx = request(QUESTION if body is None else body, headers, **kw)
    if before is not None:
        before(ctx)  # the plugins that run first on the route
    run_access(handler, ctx)
    return ctx


def answer(handler, ctx, status, body: bytes, headers=None):
    """Play a whole upstream answer through header_filter and body_filter."""
    set_response(ctx, status, {"Content-Type": "application/json",
                               "Content-Length": str(len(body)), **(headers or {})})
    handler.header_filter(ctx)
    head = handler.body_filter(ctx, body[:7], False)
    return head + handler.body_filter(ctx, body[7:], True)


def error_of(ctx):
    return ctx.exit_status, orjson.loads(ctx.exit_body)


# -- the provider request ----------------------------------------------------------------


def test_openai_request_goes_to_anthropic_in_its_own_api(build_ai_proxy):
    handler = build_ai_proxy(chat_config("anthropic", "claude-test"))
    ctx = sent(handler, {**QUESTION, "model": "claude-test", "max_tokens": 50,
                         "messages": [{"role": "system", "content": "Be brief."},
                                      *QUESTION["messages"]]})

    assert not ctx.exited
    assert ctx.upstream_target == ("http", "127.0.0.1", 9, True)
    assert ctx.request.method == "POST" and ctx.request.path == "/v1/messages"
    headers = ctx.request.headers
    assert headers.get("x-api-key") == PROVIDER_KEY
    assert headers.get("anthropic-version") == "2023-06-01"
    assert headers.get("accept-encoding") == "identity"
    assert body_of(ctx) == {"model": "claude-test", "max_tokens": 50, "system": "Be brief.",
                            "messages": [{"role": "user",
                                          "content": "What is the weather in Paris?"}]}


def test_a_body_labelled_as_text_is_still_checked_and_translated(build_ai_proxy):
    # Kong issue 14536: a client must not skip the model rules by mislabelling its body.
    handler = build_ai_proxy(chat_config())
    ctx = sent(handler, {**QUESTION, "model": "gpt-other"}, {"Content-Type": "text/plain"})

    assert error_of(ctx) == (400, {"error": {
        "message": "cannot use own model - must be: gpt-test",
        "type": "invalid_request_error", "param": None, "code": None}})


def test_gateway_credentials_never_reach_the_provider(build_ai_proxy):
    key_auth = {"name": "key-auth", "config": {"key_names": ["x-gw-key", "token"],
                                               "key_in_body": True}}
    handler = build_ai_proxy(chat_config(), extra_plugins=[key_auth])
    # What key-auth's access says of itself on this route (its own tests check it).
    ctx = sent(handler, {**QUESTION, "token": "gw-body-key"}, before=lambda ctx: (
        ctx.note_credentials(frozenset({b"x-gw-key", b"token"}), frozenset({"token"}))), headers={
        "Authorization": "Bearer client-gw-key", "apikey": "k1", "x-api-key": "k2",
        "api-key": "k3", "x-goog-api-key": "k4", "X-GW-Key": "k5", "Cookie": "session=s",
        "Anthropic-Version": "2023-01-01", "X-Mock-Status": "418", "X-Trace": "t-1",
    }, url="/v1/chat/completions?apikey=q1&token=q2")

    pairs = ctx.request.headers.pairs()
    values = [value for _, value in pairs]
    for secret in ("client-gw-key", "k1", "k2", "k3", "k4", "k5", "session=s", "2023-01-01"):
        assert not any(secret in value for value in values), secret
    assert ctx.request.headers.get_all("authorization") == [f"Bearer {PROVIDER_KEY}"]
    # Headers meant for the upstream's behaviour or tracing still go.
    assert ctx.request.headers.get("x-mock-status") == "418"
    assert ctx.request.headers.get("x-trace") == "t-1"
    assert "token" not in body_of(ctx)
    assert ctx.request.query_string == ""  # the provider's URL replaces the client's query


def test_auth_allow_override_lets_the_clients_own_provider_key_through(build_ai_proxy):
    handler = build_ai_proxy(chat_config(auth={"allow_override": True}))
    ctx = sent(handler, headers={"Authorization": "Bearer users-own-key"})
    assert ctx.request.headers.get_all("authorization") == ["Bearer users-own-key"]

    ctx = sent(handler)
    assert ctx.request.headers.get_all("authorization") == [f"Bearer {PROVIDER_KEY}"]


def test_query_credential_and_option_defaults(build_ai_proxy):
    config = chat_config("gemini", "gemini-2.0-flash")
    config["auth"] = {"param_name": "key", "param_value": "g-key", "param_location": "query"}
    config["model"]["options"] = {"upstream_url": "http://127.0.0.1:9", "temperature": 0.5,
                                  "max_tokens": 99}
    handler = build_ai_proxy(config)
    ctx = sent(handler, {**QUESTION, "temperature": 0.1})

    assert ctx.request.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert ctx.request.query() == {"key": ["g-key"]}
    generation = body_of(ctx)["generationConfig"]
    assert generation["temperature"] == 0.1  # the request's own value wins over the default
    assert generation["maxOutputTokens"] == 99


# -- Kong's refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"text"'])
def test_unreadable_bodies_are_refused_in_the_clients_format(build_ai_proxy, raw):
    message = "content-type header does not match request body, or bad JSON formatting"
    ctx = sent(build_ai_proxy(chat_config()), raw=raw)
    assert error_of(ctx) == (400, {"error": {"message": message, "type": "invalid_request_error",
                                             "param": None, "code": None}})

    ctx = sent(build_ai_proxy(chat_config(llm_format="anthropic")), raw=raw, url="/v1/messages")
    assert error_of(ctx) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": message}})


def test_a_declared_oversized_body_is_refused_before_it_is_read(build_ai_proxy):
    handler = build_ai_proxy(chat_config(max_request_body_size=64))
    ctx = request(QUESTION, {"Content-Length": "100000"})
    ctx._body_reader = None  # reading the body would now fail the test

    assert handler.access(ctx) is None  # answered synchronously
    status, body = error_of(ctx)
    assert status == 413
    assert body["error"]["message"] == "request body is larger than max_request_body_size (64 bytes)"


def test_an_oversized_chunked_body_is_refused_after_reading(build_ai_proxy):
    handler = build_ai_proxy(chat_config(max_request_body_size=64, llm_format="anthropic"))
    data = orjson.dumps({**QUESTION, "max_tokens": 5})
    ctx = make_context("POST", "/v1/messages", {"Transfer-Encoding": "chunked"}, body=data)
    run_access(handler, ctx)

    assert error_of(ctx) == (413, {"type": "error", "error": {
        "type": "request_too_large",
        "message": "request body is larger than max_request_body_size (64 bytes)"}})


@pytest.mark.parametrize(
    ("config_name", "allow", "asked", "outcome"),
    [
        ("gpt-test", False, None, "gpt-test"),
        ("gpt-test", False, "gpt-test", "gpt-test"),
        ("gpt-test", False, "gpt-other", 400),
        ("gpt-test", True, "gpt-other", "gpt-other"),
        ("gpt-test", True, None, "gpt-test"),
        (None, False, "gpt-own", "gpt-own"),
        (None, False, None, 400),
    ],
)
def test_model_rules(build_ai_proxy, config_name, allow, asked, outcome):
    config = chat_config(name=config_name)
    config["model"]["allow_override"] = allow
    body = {**QUESTION, **({"model": asked} if asked else {})}
    ctx = sent(build_ai_proxy(config), body)

    if outcome == 400:
        expected = ("model parameter not found in request, nor in gateway configuration"
                    if config_name is None else "cannot use own model - must be: gpt-test")
        assert error_of(ctx)[0] == 400
        assert error_of(ctx)[1]["error"]["message"] == expected
    else:
        assert not ctx.exited
        assert body_of(ctx)["model"] == outcome


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": "Once upon"},
         "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type"),
        ({"messages": []}, "request format not recognised"),
        ({"messages": [{"role": "user", "content": "a"}], "prompt": "b"},
         "request matches multiple LLM request formats"),
        ({"messages": ["hello"]}, "messages: expected a list of objects"),
        ({"messages": [{"role": "user", "content": 42}]},
         "messages[0].content: expected a string or a list of objects"),
    ],
)
def test_requests_that_are_not_chat_are_refused(build_ai_proxy, body, message):
    ctx = sent(build_ai_proxy(chat_config()), body)
    assert error_of(ctx)[0] == 400
    assert error_of(ctx)[1]["error"]["message"] == message


def test_anthropic_requests_need_messages(build_ai_proxy):
    ctx = sent(build_ai_proxy(chat_config(llm_format="anthropic")), {"model": "gpt-test"})
    assert error_of(ctx) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "messages: Field required"}})


def test_anthropic_token_counting_is_answered_without_a_provider_call(build_ai_proxy):
    handler = build_ai_proxy(chat_config(llm_format="anthropic"))
    ctx = sent(handler, {**QUESTION, "model": "gpt-test"}, url="/v1/messages/count_tokens")

    status, body = error_of(ctx)
    assert status == 200 and body["input_tokens"] > 4
    assert ctx.upstream_target is None


@pytest.mark.parametrize(
    ("mode", "asked", "outcome"),
    [("allow", True, True), ("allow", False, False), ("always", False, True),
     ("deny", False, False), ("deny", True, 400)],
)
def test_response_streaming_rules(build_ai_proxy, mode, asked, outcome):
    ctx = sent(build_ai_proxy(chat_config(response_streaming=mode)), {**QUESTION, "stream": asked})
    if outcome == 400:
        assert error_of(ctx)[1]["error"]["message"] == \
            "response streaming is not enabled for this LLM"
    else:
        assert body_of(ctx).get("stream", False) is outcome
        assert ctx.request.headers.get("accept") == (
            "text/event-stream" if outcome else "application/json")


# -- answers ------------------------------------------------------------------------------------


def test_a_whole_answer_is_translated_with_usage_cost_and_log_section(build_ai_proxy):
    config = chat_config("anthropic", "claude-test", logging={"log_statistics": True})
    config["model"]["options"].update(input_cost=3.0, output_cost=15.0)
    handler = build_ai_proxy(config)
    ctx = sent(handler)
    before = metrics.REGISTRY.series.get(("anthropic", "claude-test", ""))
    requests_before = before.requests if before else 0

    out = answer(handler, ctx, 200, orjson.dumps(ANTHROPIC_ANSWER))
    handler.log(ctx)

    completion = orjson.loads(out)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "Sunny."
    assert completion["usage"]["total_tokens"] == 1500
    headers = ctx.response.headers
    assert headers.get("content-length") is None
    assert headers.get("content-type") == "application/json"
    assert headers.get("x-fastgw-llm-model") == "anthropic/claude-test"
    proxy = ctx.ai["proxy"]
    assert proxy["usage"]["prompt_tokens"] == 1000
    assert proxy["usage"]["completion_tokens"] == 500
    assert proxy["usage"]["cost"] == pytest.approx((1000 * 3.0 + 500 * 15.0) / 1e6)
    assert proxy["usage"]["estimated"] is False
    assert proxy["meta"]["provider_name"] == "anthropic"
    assert proxy["meta"]["request_model"] == "claude-test"
    assert proxy["meta"]["request_mode"] == "oneshot"
    assert proxy["meta"]["llm_latency"] >= 0
    assert "payload" not in proxy
    series = metrics.REGISTRY.series[("anthropic", "claude-test", "")]
    assert series.requests == requests_before + 1


def test_usage_is_estimated_when_the_provider_reports_none(build_ai_proxy):
    handler = build_ai_proxy(chat_config(logging={"log_statistics": True}))
    ctx = sent(handler)
    answer_without_usage = {k: v for k, v in OPENAI_ANSWER.items() if k != "usage"}

    answer(handler, ctx, 200, orjson.dumps(answer_without_usage))
    handler.log(ctx)

    usage = ctx.ai["proxy"]["usage"]
    assert usage["estimated"] is True
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_a_reasoning_models_total_is_the_providers_own(build_ai_proxy):
    config = chat_config(logging={"log_statistics": True})
    config["model"]["options"].update(input_cost=1.0, output_cost=2.0)
    handler = build_ai_proxy(config)
    ctx = sent(handler)
    reasoning = {**OPENAI_ANSWER, "usage": {
        "prompt_tokens": 100, "completion_tokens": 400, "total_tokens": 530,
        "completion_tokens_details": {"reasoning_tokens": 350}}}

    answer(handler, ctx, 200, orjson.dumps(reasoning))
    handler.log(ctx)

    usage = ctx.ai["proxy"]["usage"]
    assert usage["total_tokens"] == 530  # as billed, not 100 + 400
    assert usage["cost"] == pytest.approx((100 * 1.0 + 400 * 2.0) / 1e6)


def test_the_anthropic_front_door_answers_as_anthropic(build_ai_proxy):
    handler = build_ai_proxy(chat_config(llm_format="anthropic"))
    ctx = sent(handler, {**QUESTION, "model": "gpt-test", "max_tokens": 20}, url="/v1/messages")
    assert body_of(ctx)["max_tokens"] == 20

    message = orjson.loads(answer(handler, ctx, 200, orjson.dumps(OPENAI_ANSWER)))

    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [{"type": "text", "text": "Sunny."}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"] == {"input_tokens": 12, "output_tokens": 3}


def test_upstream_errors_answer_in_the_clients_format(build_ai_proxy):
    provider_error = orjson.dumps({"type": "error", "error": {
        "type": "rate_limit_error", "message": "Slow down."}})
    handler = build_ai_proxy(chat_config("anthropic", "claude-test"))
    ctx = sent(handler)
    out = answer(handler, ctx, 429, provider_error)
    assert ctx.response.status == 429
    assert orjson.loads(out) == {"error": {"message": "Slow down.", "type": "rate_limit_error",
                                           "param": None, "code": None}}

    openai_failure = orjson.dumps({"error": {"message": "Overloaded", "type": "server_error"}})
    handler = build_ai_proxy(chat_config(llm_format="anthropic"))
    ctx = sent(handler, {**QUESTION, "max_tokens": 5})
    out = answer(handler, ctx, 529, openai_failure)
    assert orjson.loads(out) == {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}


def test_an_unreadable_provider_answer_becomes_an_error_body(build_ai_proxy):
    handler = build_ai_proxy(chat_config())
    ctx = sent(handler)
    out = orjson.loads(answer(handler, ctx, 200, b"<html>bad gateway</html>"))
    assert out["error"]["type"] == "api_error"
    assert "invalid JSON" in out["error"]["message"]


def test_a_compressed_provider_answer_is_decompressed(build_ai_proxy):
    handler = build_ai_proxy(chat_config())
    ctx = sent(handler)
    out = answer(handler, ctx, 200, gzip.compress(orjson.dumps(OPENAI_ANSWER)),
                 {"Content-Encoding": "gzip"})
    assert orjson.loads(out)["choices"][0]["message"]["content"] == "Sunny."
    assert ctx.response.headers.get("content-encoding") is None


def test_answers_the_gateway_gives_itself_pass_untouched(build_ai_proxy):
    handler = build_ai_proxy(chat_config())
    ctx = sent(handler)
    set_response(ctx, 401, {"Content-Type": "application/json"}, source="exit")
    handler.header_filter(ctx)
    assert handler.body_filter(ctx, b'{"message":"Unauthorized"}', True) == \
        b'{"message":"Unauthorized"}'
    assert ctx.response.headers.get("x-fastgw-llm-model") is None


# -- streams ------------------------------------------------------------------------------------


def start_stream(handler, body=None, **kw):
    ctx = sent(handler, {**QUESTION, "stream": True, **(body or {})}, **kw)
    set_response(ctx, 200, {"Content-Type": "text/event-stream"})
    handler.header_filter(ctx)
    return ctx


def test_each_stream_piece_is_translated_as_it_arrives(build_ai_proxy):
    handler = build_ai_proxy(chat_config(logging={"log_statistics": True}))
    ctx = start_stream(handler)
    assert ctx.response.headers.get("content-type") == "text/event-stream"

    first = handler.body_filter(ctx, OPENAI_STREAM[0], False)
    assert first.startswith(b"data: ") and b'"Sun"' in first  # sent on at once
    rest = b"".join(handler.body_filter(ctx, piece, False) for piece in OPENAI_STREAM[1:])
    end = handler.body_filter(ctx, b"", True)
    handler.log(ctx)

    assert b'"ny."' in rest
    assert b"[DONE]" not in rest and end.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' not in rest + end  # the client did not ask for the usage chunk
    usage = ctx.ai["proxy"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (12, 3)
    assert usage["time_to_first_token"] is not None
    assert ctx.ai["proxy"]["meta"]["request_mode"] == "stream"


def test_a_stream_cut_ends_with_an_error_event_never_done(build_ai_proxy):
    handler = build_ai_proxy(chat_config())
    ctx = start_stream(handler)
    handler.body_filter(ctx, OPENAI_STREAM[0], False)
    ctx.response.aborted = True

    end = handler.body_filter(ctx, b"", True)

    assert b"[DONE]" not in end
    error = orjson.loads(end.removeprefix(b"data: "))
    assert error["error"]["code"] == "stream_cut"


def test_a_stream_broken_off_after_its_end_marker_is_still_not_a_clean_end(build_ai_proxy):
    # The client cannot tell what was lost in the body's framing: no [DONE].
    handler = build_ai_proxy(chat_config())
    ctx = start_stream(handler)
    for piece in OPENAI_STREAM:
        handler.body_filter(ctx, piece, False)
    ctx.response.aborted = True

    end = handler.body_filter(ctx, b"", True)

    assert b"[DONE]" not in end and b'"stream_cut"' in end


def test_an_anthropic_stream_cut_ends_with_an_error_event(build_ai_proxy):
    handler = build_ai_proxy(chat_config(llm_format="anthropic"))
    ctx = start_stream(handler, {"max_tokens": 10}, url="/v1/messages")
    opening = handler.body_filter(ctx, OPENAI_STREAM[0], False)
    assert opening.startswith(b"event: message_start\n")
    assert b"event: content_block_delta" in opening
    ctx.response.aborted = True

    end = handler.body_filter(ctx, b"", True)

    assert end.startswith(b"event: error\n")
    assert b"message_stop" not in end
    assert b'"type":"api_error"' in end


def test_an_upstream_error_event_mid_stream_ends_the_stream(build_ai_proxy):
    handler = build_ai_proxy(chat_config())
    ctx = start_stream(handler)
    failure = b'data: {"error": {"message": "model crashed", "type": "server_error"}}\n\n'

    out = handler.body_filter(ctx, OPENAI_STREAM[0] + failure + OPENAI_STREAM[1], False)

    assert b'"Sun"' in out and b"model crashed" in out and b'"ny."' not in out
    assert handler.body_filter(ctx, OPENAI_STREAM[3], False) == b""
    assert handler.body_filter(ctx, b"", True) == b""


def test_a_streaming_request_answered_with_an_error_is_not_a_stream(build_ai_proxy):
    handler = build_ai_proxy(chat_config("anthropic", "claude-test"))
    ctx = sent(handler, {**QUESTION, "stream": True})
    body = orjson.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "busy"}})
    out = answer(handler, ctx, 529, body)
    assert ctx.response.headers.get("content-type") == "application/json"
    assert orjson.loads(out)["error"]["message"] == "busy"


# -- log ----------------------------------------------------------------------------------------


def test_the_log_entry_never_shows_the_provider_credential(build_ai_proxy):
    config = chat_config("gemini", "gemini-2.0-flash", logging={"log_payloads": True})
    config["auth"] = {"header_name": "x-goog-api-key", "header_value": "header-secret",
                      "param_name": "key", "param_value": "query-secret",
                      "param_location": "query"}
    handler = build_ai_proxy(config)
    ctx = sent(handler)
    assert ctx.request.headers.get("x-goog-api-key") == "header-secret"
    gemini_answer = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]},
                                     "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1,
                                       "totalTokenCount": 5}}
    answer(handler, ctx, 200, orjson.dumps(gemini_answer))

    handler.log(ctx)

    entry = orjson.dumps(ctx.log_entry())
    assert b"header-secret" not in entry and b"query-secret" not in entry
    payload = ctx.ai["proxy"]["payload"]
    assert orjson.loads(payload["request"]) == QUESTION
    assert orjson.loads(payload["response"])["choices"][0]["message"]["content"] == "Hi"
    assert "usage" not in ctx.ai["proxy"]  # log_statistics is off
