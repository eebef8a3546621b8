"""Gemini and Ollama shapes over raw HTTP (the gateway translates to them; no SDK installed)."""

from __future__ import annotations

import orjson

from fastgw.mockllm.textgen import count_tokens

GEMINI_PATH = "/v1beta/models/gemini-2.5-flash"
GEMINI_BODY = {
    "systemInstruction": {"parts": [{"text": "Be kind."}]},
    "contents": [{"role": "user", "parts": [{"text": "Name three rivers in Europe"}]}],
}
WEATHER_DECLARATION = {
    "name": "get_weather",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "required": ["city"],
    },
}
OLLAMA_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
OLLAMA_BODY = {
    "model": "llama3.2",
    "messages": [{"role": "user", "content": "Name three rivers in Europe"}],
}


def _sse_payloads(body: bytes) -> list[dict]:
    return [
        orjson.loads(line[len(b"data: ") :])
        for line in body.split(b"\n")
        if line.startswith(b"data: ")
    ]


def test_gemini_generate_content(call_mock):
    response = call_mock("POST", f"{GEMINI_PATH}:generateContent", GEMINI_BODY)
    assert response.status == 200
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["content"]["role"] == "model" and candidate["finishReason"] == "STOP"
    text = candidate["content"]["parts"][0]["text"]
    assert text.startswith("Mock answer to: Name three rivers in Europe")
    usage = body["usageMetadata"]
    assert usage["promptTokenCount"] == count_tokens("Be kind.") + count_tokens(
        "Name three rivers in Europe"
    )
    assert usage["candidatesTokenCount"] == 16
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 16


def test_gemini_stream_sse_and_json_array(call_mock):
    whole = call_mock("POST", f"{GEMINI_PATH}:generateContent", GEMINI_BODY).json()
    sse = call_mock("POST", f"{GEMINI_PATH}:streamGenerateContent?alt=sse", GEMINI_BODY)
    chunks = _sse_payloads(sse.body)
    assert sse.headers["content-type"].startswith("text/event-stream")
    streamed = "".join(chunk["candidates"][0]["content"]["parts"][0]["text"] for chunk in chunks)
    assert streamed == whole["candidates"][0]["content"]["parts"][0]["text"]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == whole["usageMetadata"]
    assert all("finishReason" not in chunk["candidates"][0] for chunk in chunks[:-1])
    array = call_mock("POST", f"{GEMINI_PATH}:streamGenerateContent", GEMINI_BODY)
    assert array.headers["content-type"] == "application/json"
    assert [c["candidates"][0]["content"] for c in array.json()] == [
        c["candidates"][0]["content"] for c in chunks
    ]


def test_gemini_limits_tools_and_errors(call_mock):
    limited = call_mock(
        "POST",
        f"{GEMINI_PATH}:generateContent",
        {**GEMINI_BODY, "generationConfig": {"maxOutputTokens": 2}},
    ).json()
    assert limited["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert limited["candidates"][0]["content"]["parts"][0]["text"] == "Mock answer"
    with_tools = {**GEMINI_BODY, "tools": [{"functionDeclarations": [WEATHER_DECLARATION]}]}
    called = call_mock("POST", f"{GEMINI_PATH}:generateContent", with_tools).json()
    assert called["candidates"][0]["content"]["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    reply = {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "grey"}}}],
    }
    answered = call_mock(
        "POST",
        f"{GEMINI_PATH}:generateContent",
        {**with_tools, "contents": [*with_tools["contents"], reply]},
    ).json()
    assert '{"sky":"grey"}' in answered["candidates"][0]["content"]["parts"][0]["text"]
    limited_rate = call_mock(
        "POST", f"{GEMINI_PATH}:generateContent", GEMINI_BODY, {"x-mock-status": "429"}
    )
    assert limited_rate.status == 429
    assert limited_rate.json()["error"] == {
        "code": 429,
        "message": limited_rate.json()["error"]["message"],
        "status": "RESOURCE_EXHAUSTED",
    }
    assert (
        call_mock("POST", f"{GEMINI_PATH}:explode", GEMINI_BODY).json()["error"]["status"]
        == "NOT_FOUND"
    )


def test_ollama_chat_streams_ndjson_by_default(call_mock):
    response = call_mock("POST", "/api/chat", OLLAMA_BODY)
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in response.lines()]
    assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"] is True
    text = "".join(line["message"]["content"] for line in lines)
    assert text.startswith("Mock answer to: Name three rivers in Europe")
    final = lines[-1]
    assert final["done_reason"] == "stop" and final["eval_count"] == 16
    assert final["prompt_eval_count"] == count_tokens("Name three rivers in Europe")


def test_ollama_chat_json_options_and_tools(call_mock):
    body = {**OLLAMA_BODY, "stream": False, "options": {"num_predict": 3}}
    limited = call_mock("POST", "/api/chat", body).json()
    assert limited["message"] == {"role": "assistant", "content": "Mock answer to"}
    assert limited["done_reason"] == "length" and limited["eval_count"] == 3
    called = call_mock(
        "POST", "/api/chat", {**OLLAMA_BODY, "stream": False, "tools": [OLLAMA_TOOL]}
    ).json()
    assert called["message"]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    missing_model = call_mock("POST", "/api/chat", {"messages": OLLAMA_BODY["messages"]})
    assert (missing_model.status, missing_model.json()) == (400, {"error": "model is required"})


def test_ollama_tags(call_mock):
    models = call_mock("GET", "/api/tags").json()["models"]
    assert models and all(model["name"] == model["model"] for model in models)
