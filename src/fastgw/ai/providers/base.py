"""The translator interface, and the helpers every provider shares.

A ``ProviderTranslator`` is stateless: one instance per provider serves every
request. It turns an OpenAI-format request into the provider's HTTP request,
and the provider's answers (whole, streamed, or errors) back into OpenAI's
shapes. A ``StreamTranslator`` holds the state of one streamed answer.
Nothing here opens sockets; bytes and dicts go in and out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import orjson

from fastgw._core.token_estimate import TokenEstimator, estimate_tokens
from fastgw.ai.config import SAMPLING_OPTIONS, AuthConfig, ModelConfig, ModelOptions
from fastgw.ai.errors import (
    StreamCut,
    StreamError,
    TranslationError,
    UnsupportedRouteType,
    UpstreamFormatError,
    json_shape,
)
from fastgw.ai.openai_format import (
    ROUTE_CHAT,
    ROUTE_EMBEDDINGS,
    new_id,
    now,
    openai_error,
)
from fastgw.ai.sse import SSEEvent, SSEParser
from fastgw.ai.usage import Usage, estimate_prompt_tokens

SYSTEM_ROLES = frozenset(("system", "developer"))
STREAM_CUT_MESSAGE = "upstream closed the stream before the answer was complete"


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url_base: str  # scheme://host[:port], no trailing slash
    path_and_query: str
    headers: list[tuple[str, str]]  # without Host: the caller sets it from url_base
    body: bytes
    stream: bool = False

    @property
    def url(self) -> str:
        return self.url_base + self.path_and_query

    @property
    def scheme(self) -> str:
        return _split_base(self.url_base)[0]

    @property
    def host(self) -> str:
        return _split_base(self.url_base)[1]

    @property
    def port(self) -> int:
        return _split_base(self.url_base)[2]


@lru_cache(maxsize=256)
def _split_base(url_base: str) -> tuple[str, str, int]:
    parts = urlsplit(url_base)
    return (
        parts.scheme,
        parts.hostname or "",
        parts.port or (443 if parts.scheme == "https" else 80),
    )


@lru_cache(maxsize=256)
def split_url(url: str) -> tuple[str, str]:
    """``https://h:1/a?b`` -> (``https://h:1``, ``/a?b``); cached, URLs come from config."""
    parts = urlsplit(url)
    path = parts.path
    if parts.query:
        path = f"{path or '/'}?{parts.query}"
    return f"{parts.scheme}://{parts.netloc}", path


# --- request helpers ----------------------------------------------------------


def resolve_model_name(body: dict[str, Any], model: ModelConfig) -> str:
    """The configured model wins; the caller clears ``model.name`` when override is allowed."""
    name = model.name or body.get("model")
    if not name or not isinstance(name, str):
        raise TranslationError(
            "no model name: set model.name in the config or 'model' in the request"
        )
    return name


def with_option_defaults(body: dict[str, Any], options: ModelOptions,
                         max_tokens_field: str = "max_tokens") -> dict[str, Any]:
    """Fill sampling fields the request left unset from the model options
    (Kong's rule); ``max_tokens_field``: what the API calls the output bound
    (the Responses API's ``max_output_tokens``)."""
    defaults = {}
    if (
        options.max_tokens is not None
        and max_tokens_field not in body
        and "max_tokens" not in body
        and "max_completion_tokens" not in body
    ):
        defaults[max_tokens_field] = options.max_tokens
    for key in SAMPLING_OPTIONS:
        value = getattr(options, key)
        if value is not None and key not in body:
            defaults[key] = value
    return {**body, **defaults} if defaults else body


def apply_auth(auth: AuthConfig, headers: list[tuple[str, str]], path: str, payload: Any) -> str:
    """Add the configured credential (header, query or body parameter); return the new path."""
    if auth.header_name and auth.header_value is not None:
        headers.append((auth.header_name, auth.header_value))
    if auth.param_name and auth.param_value is not None:
        if auth.param_location == "body" and isinstance(payload, dict):
            payload[auth.param_name] = auth.param_value
        else:
            separator = "&" if "?" in path else "?"
            path = f"{path}{separator}{quote(auth.param_name)}={quote(auth.param_value, safe='')}"
    return path


def content_text(content: Any) -> str:
    """The text of a message ``content`` (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A message ``content`` as a list of OpenAI parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    return []


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:image/png;base64,AAA`` -> (``image/png``, ``AAA``); None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64":
        raise TranslationError("only base64 data URLs are supported for images")
    return media_type or "application/octet-stream", data


def image_url_of(part: dict[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url part without a url")
    return url


def tool_arguments(arguments: Any) -> dict[str, Any]:
    """OpenAI's JSON-string arguments as the object other providers require."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        # History holds what a model once produced, sometimes broken JSON. The
        # call already happened; an empty object keeps the conversation going.
        return {}
    return value if isinstance(value, dict) else {"value": value}


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Tool-call id -> function name, for providers that answer tool results by name."""
    names = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if call.get("id") and function.get("name"):
                names[call["id"]] = function["name"]
    return names


def stop_sequences(stop: Any) -> list[str] | None:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and stop:
        return [s for s in stop if isinstance(s, str)]
    return None


def requested_max_tokens(body: dict[str, Any]) -> int | None:
    return body.get("max_completion_tokens") or body.get("max_tokens")


def new_tool_call_id() -> str:
    return new_id("call_")


def refuse_untranslatable(body: dict[str, Any], fields: tuple[str, ...], provider: str) -> None:
    """A request that sets one of ``fields`` (to anything but null or false),
    or ``n`` other than 1 when ``n`` is among them, asks for what ``provider``
    cannot do: refused with a 400 naming the field."""
    if "n" in fields and (body.get("n") or 1) != 1:
        raise TranslationError(f"n: provider '{provider}' answers one choice per request; "
                               "send n requests instead", code="unsupported_parameter")
    for name in fields:
        if name == "n":
            continue
        value = body.get(name)
        if value is not None and value is not False:
            raise TranslationError(f"{name}: provider '{provider}' has no equivalent",
                                   code="unsupported_parameter")


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamFormatError(f"upstream answered with invalid JSON: {exc}") from None


def load_json_object(body: bytes) -> dict[str, Any]:
    """A whole answer that must be one JSON object."""
    answer = load_json(body)
    if not isinstance(answer, dict):
        raise UpstreamFormatError("upstream answer is not a JSON object")
    if answer.get("error") or answer.get("type") == "error":
        # An error body on a success status breaks the API's promise.
        error = answer.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        raise UpstreamFormatError(f"upstream answered a success status with an error body: "
                                  f"{message if isinstance(message, str) else 'no message'}")
    return answer


def answer_model(reported: Any, model_name: str | None, request: dict[str, Any] | None) -> str:
    """The model an answer names, else the one it was asked of."""
    return reported or model_name or (request or {}).get("model") or ""


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The ``input`` of an embeddings request as texts; token-id input needs OpenAI itself."""
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise TranslationError("'input' must be a string or a list of strings for this provider")
    return texts


def normalize_error(payload: Any, status: int, raw: bytes) -> dict[str, Any]:
    """Any provider's error body as OpenAI's ``{"error": {...}}``."""
    if isinstance(payload, list) and payload:
        payload = payload[0]  # Gemini wraps errors of its array streams in a list
    message: Any = None
    error_type = code = param = None
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, str):
            message = error
        elif isinstance(error, dict):
            message = error.get("message", error.get("detail"))
            error_type, code, param = error.get("type"), error.get("code"), error.get("param")
            if isinstance(error.get("status"), str):
                code = error["status"]  # Google's name (INVALID_ARGUMENT) says more than its number
    if message is None:
        message = raw[:1000].decode("utf-8", "replace").strip() or f"upstream answered {status}"
    elif not isinstance(message, str):
        message = json_text(message)
    return openai_error(
        message,
        error_type if isinstance(error_type, str) else None,
        status=status,
        code=code if isinstance(code, (str, int)) else None,
        param=param if isinstance(param, str) else None,
    )


# --- translators ----------------------------------------------------------------


def provider_shape(provider: str) -> Any:
    return json_shape(f"the {provider or 'upstream'} answer", UpstreamFormatError)


class ProviderTranslator:
    """One provider's API; subclasses fill the hooks marked below."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    route_types: ClassVar[frozenset[str]] = frozenset((ROUTE_CHAT,))
    stream_content_type: ClassVar[str] = "text/event-stream"
    # What ``stream_translator`` makes: the state of one streamed answer.
    stream_translator_class: ClassVar[type[StreamTranslator]]
    # The front door whose API this provider speaks natively (None: none):
    # its clients' requests and answers pass through (build_native_request).
    native_format: ClassVar[str | None] = None
    # Fields a native request must carry, used when neither it nor the
    # model options give one.
    native_fallbacks: ClassVar[dict[str, Any]] = {}
    # Canonical request fields asking for what this provider cannot do:
    # refused (400 naming the field) when set, and refused at config time as
    # model options.
    untranslatable_fields: ClassVar[tuple[str, ...]] = ()

    def max_tokens_field(self, route_type: str) -> str:
        """What a native request of ``route_type`` calls its output bound."""
        return "max_tokens"

    def answers_in_openai_format(self, route_type: str, request: dict[str, Any]) -> bool:
        """Whether a whole answer comes back as the canonical (OpenAI) answer
        parse_response makes of it, so an OpenAI client can have it as written."""
        return False

    def build_request(
        self, route_type: str, body: dict[str, Any], model: ModelConfig
    ) -> UpstreamRequest:
        """The provider request for an OpenAI-format ``body`` (which is not modified)."""
        with json_shape("the request body", TranslationError):
            return self._build_request(route_type, body, model)

    def _build_request(
        self, route_type: str, body: dict[str, Any], model: ModelConfig
    ) -> UpstreamRequest:
        self.check_route_type(route_type)
        model_name = resolve_model_name(body, model)
        stream = route_type != ROUTE_EMBEDDINGS and body.get("stream") is True
        if route_type != ROUTE_EMBEDDINGS:
            body = with_option_defaults(body, model.options)
        payload = self.request_payload(route_type, body, model, model_name, stream)
        return self.upstream_request(route_type, payload, model, model_name, stream)

    def build_native_request(self, route_type: str, body: dict[str, Any], model: ModelConfig,
                             stream: bool) -> UpstreamRequest:
        """The provider request for a client that speaks the provider's own API
        (``native_format``): the body goes as it came, but for the model, the
        configured defaults of fields it leaves unset, and the credential."""
        with json_shape("the request body", TranslationError):
            self.check_route_type(route_type)
            model_name = resolve_model_name(body, model)
            defaults = with_option_defaults(body, model.options, self.max_tokens_field(route_type))
            payload = {**self.native_fallbacks, **defaults, "model": model_name}
            if stream:
                payload["stream"] = True
            return self.upstream_request(route_type, payload, model, model_name, stream)

    def upstream_request(self, route_type: str, payload: dict[str, Any], model: ModelConfig,
                         model_name: str, stream: bool) -> UpstreamRequest:
        """``payload`` sent to the provider's URL with its headers and the credential."""
        url_base, path = self.target(route_type, model, model_name, stream)
        headers = [
            ("content-type", "application/json"),
            ("accept", self.stream_content_type if stream else "application/json"),
        ]
        headers.extend(self.extra_headers(model))
        path = apply_auth(model.auth, headers, path, payload)
        return UpstreamRequest("POST", url_base, path, headers, orjson.dumps(payload), stream)

    def check_route_type(self, route_type: str) -> None:
        if route_type not in self.route_types:
            raise UnsupportedRouteType(
                f"provider '{self.name}' does not support route type '{route_type}'"
            )

    def target(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> tuple[str, str]:
        """(url_base, path_and_query): upstream_url wins; with no path, the default path is added."""
        options = model.options
        if options.upstream_url:
            url_base, path = split_url(options.upstream_url)
            if path not in ("", "/"):
                return url_base, self.custom_path(path, stream)
        else:
            url_base = self.base_url(model)
        return url_base, options.upstream_path or self.endpoint_path(
            route_type, model, model_name, stream
        )

    # -- hooks -------------------------------------------------------------------

    def request_payload(
        self,
        route_type: str,
        body: dict[str, Any],
        model: ModelConfig,
        model_name: str,
        stream: bool,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        raise NotImplementedError

    def base_url(self, model: ModelConfig) -> str:
        return self.default_base_url

    def custom_path(self, path: str, stream: bool) -> str:
        """The path of a full ``upstream_url``; providers whose stream has its own path adjust it."""
        return path

    def extra_headers(self, model: ModelConfig) -> list[tuple[str, str]]:
        return []

    def parse_response(
        self,
        route_type: str,
        status: int,
        body: bytes,
        request: dict[str, Any] | None = None,
        *,
        model_name: str | None = None,
    ) -> tuple[dict[str, Any], Usage]:
        """A successful (2xx) answer in OpenAI's shape, and its usage.

        ``request`` is the client's OpenAI-format body: it says how the client
        wants embeddings encoded, and gives the prompt estimate when the
        provider reports no usage. ``model_name`` (the model the request was
        sent for) names the answer when the provider does not. An answer that
        does not have the shape the provider's API promises raises
        ``UpstreamFormatError`` (502), whatever part of it is wrong.
        """
        with provider_shape(self.name):
            return self._parse_response(route_type, status, body, request, model_name=model_name)

    def _parse_response(
        self,
        route_type: str,
        status: int,
        body: bytes,
        request: dict[str, Any] | None,
        *,
        model_name: str | None,
    ) -> tuple[dict[str, Any], Usage]:
        raise NotImplementedError

    def parse_error(self, status: int, body: bytes) -> dict[str, Any]:
        """A failed (non-2xx) answer as an OpenAI error body."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        return normalize_error(payload, status, body)

    def stream_translator(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> StreamTranslator:
        """State for one streamed answer to ``request`` (the client's OpenAI-format body)."""
        stream = self.stream_translator_class(route_type, model_name, request)
        stream.provider_name = self.name
        return stream


class StreamTranslator:
    """Provider stream bytes in, OpenAI stream chunks out (``chat.completion.chunk``,
    or ``text_completion`` on llm/v1/completions).

    Protocol for the caller: send what ``feed`` returns as it comes; at upstream
    EOF call ``finish``. It returns the last chunks (the usage chunk when the
    client asked for one), after which the caller sends ``[DONE]``; or it raises
    ``StreamError`` (the upstream reported an error mid-stream) or ``StreamCut``
    (EOF before the provider's end marker), whose ``.error`` the caller sends in
    the client's format instead of a clean end. ``failed`` turns true as soon as
    an upstream error is seen, so the caller may stop reading early.
    """

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        self.route_type = route_type
        self.model_name = model_name
        self.request = request
        self.provider_name = ""  # named in errors; set by ProviderTranslator.stream_translator
        # The client asked for OpenAI's final usage chunk (stream_options.include_usage).
        self.include_usage = bool(
            ((request or {}).get("stream_options") or {}).get("include_usage")
        )
        self.usage: Usage | None = None
        self.first_token_seen = False
        self.done = False  # the provider's end marker was seen
        self.error: dict[str, Any] | None = None
        self.unreadable = False  # the error is the gateway's: an event it could not read
        self._chat = route_type == ROUTE_CHAT
        self._id = new_id("chatcmpl-" if self._chat else "cmpl-")
        self._created = now()
        self._output = TokenEstimator()
        self._role_sent = False

    @property
    def failed(self) -> bool:
        return self.error is not None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        if self.error is not None:
            return []
        try:
            with provider_shape(self.provider_name):
                return self._feed(data)
        except UpstreamFormatError as failure:
            # The stream ends here with a 502 error event, as for an upstream error.
            self.error = failure.error
            self.unreadable = True
            return []

    def finish(self) -> list[dict[str, Any]]:
        if self.error is not None:
            raise StreamError(self.error)
        if not self.done:
            raise StreamCut(stream_cut_error())
        self.usage = self.usage_so_far()
        return [self._usage_chunk()] if self.include_usage else []

    def usage_so_far(self) -> Usage:
        """The provider's usage if it reported one, else an estimate of the
        prompt and of the output seen so far (what a failed stream still cost)."""
        if self.usage is not None:
            return self.usage
        return Usage.of(
            prompt_estimate(self.route_type, self.request), self._output.tokens, estimated=True
        )

    def _feed(self, data: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _translate_each(
        self, frames: Iterable[Any], on_frame: Callable[[Any, list[dict[str, Any]]], None]
    ) -> list[dict[str, Any]]:
        """The chunks of each frame (an SSE event, an NDJSON line) in turn; frames after
        an upstream error are not translated."""
        out: list[dict[str, Any]] = []
        for frame in frames:
            on_frame(frame, out)
            if self.error is not None:
                break
        return out

    # -- chunk builders for subclasses ------------------------------------------------

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": self._created,
            "model": self.model_name,
            "choices": choices,
        }

    def _delta(
        self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
    ) -> dict[str, Any]:
        if not self._chat:
            text = delta.get("content") or ""
            return self._chunk(
                [{"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}]
            )
        if not self._role_sent:
            # OpenAI names the role once, in the first delta of the stream.
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        return self._chunk(
            [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )

    def _text(self, text: str, index: int = 0) -> dict[str, Any]:
        self._output.add(text)
        self.first_token_seen = True
        return self._delta({"content": text}, index=index)

    def _reasoning(self, text: str, index: int = 0) -> dict[str, Any]:
        self._output.add(text)
        self.first_token_seen = True
        return self._delta({"reasoning_content": text}, index=index)

    def _tool_calls(self, calls: list[dict[str, Any]], index: int = 0) -> dict[str, Any]:
        """``calls`` are OpenAI tool-call deltas, each with its ``index``."""
        for call in calls:
            function = call.get("function") or {}
            self._output.add(function.get("name") or "")
            self._output.add(function.get("arguments") or "")
        self.first_token_seen = True
        return self._delta({"tool_calls": calls}, index=index)

    def _finish_chunk(self, finish_reason: str, index: int = 0) -> dict[str, Any]:
        return self._delta({}, finish_reason, index)

    def _usage_chunk(self) -> dict[str, Any]:
        chunk = self._chunk([])
        chunk["usage"] = self.usage.to_openai() if self.usage else None
        return chunk

    def _fail(self, error: dict[str, Any]) -> None:
        self.error = error


class SSEStreamTranslator(StreamTranslator):
    """A stream translator for providers that stream Server-Sent Events."""

    def __init__(
        self, route_type: str, model_name: str, request: dict[str, Any] | None = None
    ) -> None:
        super().__init__(route_type, model_name, request)
        self._parser = SSEParser()

    def _feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._translate_each(self._parser.feed(data), self._on_event)

    def _on_event(self, event: SSEEvent, out: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def _load(self, data: str) -> dict[str, Any] | None:
        """An event's JSON object; a broken event fails the stream rather than the gateway."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
        self.unreadable = True
        self._fail(
            openai_error("upstream sent an unreadable stream event", "api_error", status=502)
        )
        return None


def stream_cut_error() -> dict[str, Any]:
    """The error a client gets when the upstream broke off a stream."""
    return openai_error(STREAM_CUT_MESSAGE, "api_error", status=502, code="stream_cut")


def prompt_estimate(route_type: str, request: dict[str, Any] | None) -> int:
    return estimate_prompt_tokens(route_type, request) if request else 0


def estimated_usage(
    route_type: str, request: dict[str, Any] | None, output_text: str = ""
) -> Usage:
    """Usage counted here, for answers whose provider reported none (embeddings have no output)."""
    return Usage.of(
        prompt_estimate(route_type, request), estimate_tokens(output_text), estimated=True
    )
