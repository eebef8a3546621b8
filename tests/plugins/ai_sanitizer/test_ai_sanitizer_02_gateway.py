"""ai-sanitizer through the real gateway, in front of an OpenAI-format model
that repeats the prompt (in its answer, and in a tool call's arguments):
the model sees replacements, the client gets its values back, in JSON and
in streams whose events cut the replacements anywhere; on the Anthropic
front door too. OUTPUT hides what the model writes; block_if_detected
refuses; the log line counts and never shows a value."""

import asyncio
import json

import orjson
import pytest

from fastgw.testing import UpstreamServer, log_entries, logged_gateway

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PEM = ("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n"
       "-----END PRIVATE KEY-----")
PROMPT = f"Write to {EMAIL} about card {CARD}, then {EMAIL} again."


def last_text(request: dict) -> str:
    content = request["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def echo_model(req, writer: asyncio.StreamWriter) -> None:
    """An OpenAI-format model whose answer is the last message, and whose tool
    call (when tools are offered) carries it as an argument; streamed in
    pieces of 4 characters."""
    request = orjson.loads(req.body)
    text = last_text(request)
    arguments = json.dumps({"text": text})
    tools = request.get("tools")
    if not request.get("stream"):
        message = {"role": "assistant", "content": text}
        if tools:
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                "name": tools[0]["function"]["name"], "arguments": arguments}}]
        body = orjson.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                             "choices": [{"index": 0, "message": message,
                                          "finish_reason": "tool_calls" if tools else "stop"}],
                             "usage": {"prompt_tokens": 5, "completion_tokens": 5,
                                       "total_tokens": 10}})
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    events = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant"},
                                        "finish_reason": None}]})]
    for i in range(0, len(text), 4):
        events.append(sse({**base, "choices": [{"index": 0, "delta": {"content": text[i:i + 4]},
                                                "finish_reason": None}]}))
    if tools:
        events.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function",
             "function": {"name": tools[0]["function"]["name"], "arguments": ""}}]},
            "finish_reason": None}]}))
        for i in range(0, len(arguments), 4):
            events.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": arguments[i:i + 4]}}]},
                "finish_reason": None}]}))
    events.append(sse({**base, "choices": [{"index": 0, "delta": {},
                                            "finish_reason": "tool_calls" if tools else "stop"}]}))
    events.append(b"data: [DONE]\n\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    for event in events:
        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
    writer.write(b"0\r\n\r\n")


def route(name: str, base: str, sanitizer: dict, llm_format: str = "openai") -> dict:
    proxy = {"route_type": "llm/v1/chat", "llm_format": llm_format,
             "auth": {"header_name": "Authorization", "header_value": "Bearer k"},
             "model": {"provider": "openai", "name": "m",
                       "options": {"upstream_url": base + "/v1/chat/completions"}},
             "logging": {"log_statistics": True, "log_payloads": True}}
    return {"name": name, "paths": [f"/{name}"], "plugins": [
        {"name": "ai-proxy", "config": proxy}, {"name": "ai-sanitizer", "config": sanitizer}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("sanitizer") / "access.log"
    with UpstreamServer(echo_model) as model:
        base = f"http://127.0.0.1:{model.port}"
        routes = [
            route("placeholder", base, {}),
            route("synthetic", base, {"redact_type": "synthetic"}),
            route("anthropic", base, {}, llm_format="anthropic"),
            route("output", base, {"sanitization_mode": "OUTPUT"}),
            route("both", base, {"sanitization_mode": "BOTH"}),
            route("block", base, {"block_if_detected": True}),
            route("latest", base, {"allow_all_conversation_history": False}),
            route("mask", base, {"redact_type": "mask", "anonymize": ["creditcard"]}),
        ]
        with logged_gateway(base, routes, log_path) as gw:
            gw.model = model
            yield gw


def chat(gw, path: str, text: str = PROMPT, **extra):
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    return gw.request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"})


def sent(gw) -> dict:
    return orjson.loads(gw.model.requests[-1].body)


def stream_text(body: bytes) -> tuple[str, str]:
    """The content and the tool-call arguments an OpenAI stream carries."""
    content, arguments = [], []
    for line in body.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        for choice in orjson.loads(line[6:])["choices"]:
            delta = choice.get("delta") or {}
            content.append(delta.get("content") or "")
            for call in delta.get("tool_calls") or ():
                arguments.append((call.get("function") or {}).get("arguments") or "")
    return "".join(content), "".join(arguments)


TOOLS = [{"type": "function", "function": {"name": "send", "parameters": {"type": "object"}}}]


def test_the_model_sees_placeholders_and_the_client_its_values(gateway):
    status, _, body = chat(gateway, "/placeholder", tools=TOOLS)
    assert status == 200, body
    assert last_text(sent(gateway)) == \
        "Write to <EMAIL_1> about card <CREDIT_CARD_1>, then <EMAIL_1> again."
    message = orjson.loads(body)["choices"][0]["message"]
    assert message["content"] == PROMPT
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == {"text": PROMPT}


def test_a_stream_cut_through_placeholders_is_restored(gateway):
    status, _, body = chat(gateway, "/placeholder", stream=True, tools=TOOLS)
    assert status == 200 and body.rstrip().endswith(b"data: [DONE]")
    content, arguments = stream_text(body)
    assert content == PROMPT
    assert orjson.loads(arguments) == {"text": PROMPT}


def test_values_that_need_escaping_come_back_valid_in_tool_arguments(gateway):
    text = f"Store this key: {PEM}"
    for stream in (False, True):
        status, _, body = chat(gateway, "/placeholder", text, stream=stream, tools=TOOLS)
        assert status == 200
        assert "PRIVATE KEY" not in last_text(sent(gateway)).replace("<PRIVATE_KEY_1>", "")
        if stream:
            content, arguments = stream_text(body)
        else:
            message = orjson.loads(body)["choices"][0]["message"]
            content, arguments = message["content"], message["tool_calls"][0]["function"]["arguments"]
        assert content == text and orjson.loads(arguments) == {"text": text}


def test_synthetic_values_look_real_to_the_model_and_are_restored(gateway):
    status, _, body = chat(gateway, "/synthetic")
    seen = last_text(sent(gateway))
    assert EMAIL not in seen and "user1@example.com" in seen and "4000" in seen
    assert orjson.loads(body)["choices"][0]["message"]["content"] == PROMPT


def test_the_anthropic_front_door_sanitizes_its_system_prompt_and_messages(gateway):
    body = {"model": "m", "max_tokens": 64, "system": f"The user is {EMAIL}.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]}
    status, _, answer = gateway.request("POST", "/anthropic", orjson.dumps(body),
                                        {"Content-Type": "application/json",
                                         "anthropic-version": "2023-06-01"})
    assert status == 200, answer
    upstream = sent(gateway)
    assert EMAIL not in orjson.dumps(upstream).decode()
    assert upstream["messages"][0]["content"] == "The user is <EMAIL_1>."
    assert orjson.loads(answer)["content"][0]["text"] == PROMPT


def test_output_mode_hides_what_the_model_writes(gateway):
    status, _, body = chat(gateway, "/output")
    assert last_text(sent(gateway)) == PROMPT  # the prompt is left alone
    assert orjson.loads(body)["choices"][0]["message"]["content"] == \
        "Write to <EMAIL_1> about card <CREDIT_CARD_1>, then <EMAIL_1> again."
    status, _, body = chat(gateway, "/output", stream=True)
    assert stream_text(body)[0] == \
        "Write to <EMAIL_1> about card <CREDIT_CARD_1>, then <EMAIL_1> again."


def test_both_restores_the_prompts_values_and_hides_the_models_own(gateway):
    # The model repeats the prompt's placeholders (restored) and, here, adds
    # nothing of its own: the client gets its prompt back.
    status, _, body = chat(gateway, "/both")
    assert orjson.loads(body)["choices"][0]["message"]["content"] == PROMPT


def test_block_if_detected_refuses_naming_kinds_and_counts(gateway):
    before = len(gateway.model.requests)
    status, _, body = chat(gateway, "/block")
    assert status == 400
    message = orjson.loads(body)["error"]["message"]
    assert "email: 2" in message and "credit_card: 1" in message and EMAIL not in message
    assert len(gateway.model.requests) == before
    assert chat(gateway, "/block", "nothing personal here")[0] == 200


def test_only_the_latest_message_without_the_conversation_history(gateway):
    body = {"model": "m", "messages": [{"role": "user", "content": f"I am {EMAIL}"},
                                       {"role": "assistant", "content": "ok"},
                                       {"role": "user", "content": PROMPT}]}
    gateway.request("POST", "/latest", orjson.dumps(body), {"Content-Type": "application/json"})
    messages = sent(gateway)["messages"]
    assert messages[0]["content"] == f"I am {EMAIL}"
    assert EMAIL not in messages[2]["content"]


def test_mask_hides_for_good(gateway):
    status, _, body = chat(gateway, "/mask")
    assert last_text(sent(gateway)) == \
        f"Write to {EMAIL} about card **** **** **** 1111, then {EMAIL} again."
    assert "**** **** **** 1111" in orjson.loads(body)["choices"][0]["message"]["content"]


def test_the_log_counts_and_never_shows_a_value(gateway):
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    gateway.request("POST", "/placeholder", orjson.dumps(body),
                    {"Content-Type": "application/json", "X-Test": "log-check"})
    # This request's entry (the log phase runs after the answer went out).
    [entry] = log_entries(gateway.access_log, lambda e: e["request"]["headers"].get("x-test")
                          == "log-check", 1)
    assert entry["ai"]["sanitizer"]["input"] == {"email": 2, "credit_card": 1}
    assert entry["ai"]["sanitizer"]["restored"] == 3
    # Request and answer payloads are logged (log_payloads), but as the model saw them.
    entries = log_entries(gateway.access_log, lambda e: e["route"]["name"] == "placeholder", 4)
    text = orjson.dumps(entries).decode()
    assert EMAIL not in text and CARD not in text and "<EMAIL_1>" in text
