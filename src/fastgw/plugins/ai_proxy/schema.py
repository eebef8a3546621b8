"""Config of ai-proxy, with Kong's field names and defaults (``kong/llm/schemas``
and ``kong/plugins/ai-proxy/schema.lua``).

fastgw additions: ``route_type: llm/v1/embeddings``, ``llm_format: anthropic``
(the Anthropic Messages front door), the ``ollama`` and ``gemini`` providers,
``model.allow_override``, and ``model.options.gemini.api_version``. Kong fields
for features fastgw does not have (cloud identities, Bedrock, llama2's raw
format) are accepted only when off, so a config dumped by deck still loads and
nothing is silently ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastgw.ai.capabilities import FEATURES
from fastgw.ai.config import (
    DEFAULT_AZURE_API_VERSION,
    DEFAULT_GEMINI_API_VERSION,
    SAMPLING_OPTIONS,
    ModelConfig,
)
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_TYPES, translation_route
from fastgw.ai.providers import TRANSLATORS, get_translator
from fastgw.config.schema import (
    Array,
    Boolean,
    Integer,
    Number,
    Path,
    Record,
    String,
    Validation,
)

# Kong's llama2 provider is a Llama served by something else, named by its
# llama2_format; fastgw speaks to it with that server's translator.
LLAMA2_PROVIDERS = {"ollama": "ollama", "openai": "openai"}
PROVIDERS = (*TRANSLATORS, "llama2")
LLM_FORMATS = ("openai", "anthropic")
# Kong's default: the most of a request body ai-proxy will read and parse.
DEFAULT_MAX_REQUEST_BODY_SIZE = 8 * 1024


def model_config(config: dict[str, Any]) -> ModelConfig:
    """The translator's view of a validated config's ``model`` and ``auth``."""
    model = config["model"]
    if model["provider"] == "llama2":
        model = {**model, "provider": LLAMA2_PROVIDERS[model["options"]["llama2_format"]]}
    return ModelConfig.from_kong(model, config["auth"])


def _http_url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http or https URL"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "value must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "value must be 0 or more"


def _unsupported_flag(description: str) -> Boolean:
    return Boolean(
        default=False,
        check=lambda on: "not supported by fastgw" if on else None,
        description=description + " (Kong Enterprise; must stay false in fastgw).",
    )


def _unsupported_text(description: str) -> String:
    # Any value is an error; only absence (or null) passes.
    return String(
        check=lambda _value: "not supported by fastgw",
        referenceable=True,
        secret=True,
        description=description + " (not supported by fastgw; leave unset).",
    )


def _secret(description: str) -> String:
    return String(referenceable=True, secret=True, description=description)


def _mutually_required(record: dict, names: tuple[str, ...], path: Path,
                       ctx: Validation) -> None:
    present = [record[name] is not None for name in names]
    if any(present) and not all(present):
        listed = ", ".join(f"'{name}'" for name in names)
        ctx.error(path, f"all or none of these fields must be set: {listed}")


def _check_auth(auth: dict, path: Path, ctx: Validation) -> None:
    _mutually_required(auth, ("header_name", "header_value"), path, ctx)
    _mutually_required(auth, ("param_name", "param_value", "param_location"), path, ctx)


def _check_gemini(gemini: dict, path: Path, ctx: Validation) -> None:
    _mutually_required(gemini, ("api_endpoint", "project_id", "location_id"), path, ctx)


AUTH = Record(
    {
        "header_name": String(
            referenceable=True,
            description="Header carrying the provider credential, e.g. Authorization or x-api-key.",
        ),
        "header_value": _secret("The full header value, e.g. 'Bearer sk-...' or just the key."),
        "param_name": String(
            referenceable=True, description="Query or body parameter carrying the credential."
        ),
        "param_value": _secret("The value of param_name."),
        "param_location": String(
            one_of=("query", "body"), description="Where param_name goes: query or body."
        ),
        "allow_override": Boolean(
            default=False,
            description="A credential the client sends under the same header or parameter "
            "name is used instead of this one.",
        ),
        "azure_use_managed_identity": _unsupported_flag("Authenticate to Azure by identity"),
        "azure_client_id": _unsupported_text("Azure identity client id"),
        "azure_client_secret": _unsupported_text("Azure identity client secret"),
        "azure_tenant_id": _unsupported_text("Azure identity tenant id"),
        "gcp_use_service_account": _unsupported_flag("Authenticate to GCP by service account"),
        "gcp_service_account_json": _unsupported_text("GCP service account JSON"),
        "aws_access_key_id": _unsupported_text("AWS access key id (Bedrock)"),
        "aws_secret_access_key": _unsupported_text("AWS secret access key (Bedrock)"),
    },
    default={},
    validator=_check_auth,
    description="How the gateway authenticates to the provider.",
)

GEMINI_OPTIONS = Record(
    {
        "api_endpoint": String(description="Vertex AI regional host name (Vertex only)."),
        "project_id": String(description="Vertex AI project id (Vertex only)."),
        "location_id": String(description="Vertex AI location id (Vertex only)."),
        "api_version": String(
            default=DEFAULT_GEMINI_API_VERSION,
            description="Google AI Studio API version (fastgw addition).",
        ),
    },
    default={},
    validator=_check_gemini,
    description="Gemini settings; the three Vertex fields go together.",
)

MODEL_OPTIONS = Record(
    {
        "max_tokens": Integer(
            default=256,
            between=(1, 2**31 - 1),
            description="max_tokens for requests that set none (chat and completions).",
        ),
        "input_cost": Number(check=_positive, description="Cost per 1M prompt tokens."),
        "output_cost": Number(check=_positive, description="Cost per 1M completion tokens."),
        "cache_read_cost": Number(
            check=_not_negative,
            description="Cost per 1M prompt tokens read from the provider's prompt cache "
            "(input_cost when unset).",
        ),
        "cache_write_cost": Number(
            check=_not_negative,
            description="Cost per 1M prompt tokens written to the provider's prompt cache "
            "(input_cost when unset).",
        ),
        "temperature": Number(
            between=(0.0, 5.0), description="temperature for requests that set none."
        ),
        "top_p": Number(between=(0.0, 1.0), description="top_p for requests that set none."),
        "top_k": Integer(between=(0, 500), description="top_k for requests that set none."),
        "anthropic_version": String(description="The anthropic-version header (Anthropic)."),
        "azure_instance": String(description="Azure OpenAI instance: <instance>.openai.azure.com."),
        "azure_api_version": String(
            default=DEFAULT_AZURE_API_VERSION,
            description="Azure api-version (Kong's 2023-05-15 predates tools and stream usage).",
        ),
        "azure_deployment_id": String(description="Azure OpenAI deployment id."),
        "llama2_format": String(
            one_of=("raw", "openai", "ollama"),
            description="llama2 provider: the API of the server hosting the model.",
        ),
        "mistral_format": String(
            one_of=("openai", "ollama"),
            description="mistral provider: La Plateforme's API (openai) or an Ollama server.",
        ),
        "upstream_url": String(
            check=_http_url,
            description="The provider's full operation URL, or a base URL with no path.",
        ),
        "upstream_path": String(description="Replaces the provider's default operation path."),
        # fastgw: what the model can serve (default: fastgw.ai.capabilities' table).
        "context_window": Integer(
            between=(1, 2**31 - 1),
            description="Tokens the model takes, prompt and output together (fastgw).",
        ),
        "max_output_tokens": Integer(
            between=(1, 2**31 - 1), description="The most tokens the model writes (fastgw)."
        ),
        "capabilities": Array(
            String(one_of=FEATURES),
            description="Every feature the model takes: tools, images, audio, "
            "structured_output, reasoning (streaming is assumed) (fastgw).",
        ),
        "gemini": GEMINI_OPTIONS,
        "bedrock": Record(
            {"aws_region": _unsupported_text("AWS region (Bedrock)")},
            default={},
            description="Bedrock settings (not supported by fastgw).",
        ),
    },
    default={},
    description="Key/value settings for the model.",
)

MODEL = Record(
    {
        "provider": String(
            required=True, one_of=PROVIDERS, description="The API the upstream LLM speaks."
        ),
        "name": String(description="The model; wins over the request's 'model'."),
        "allow_override": Boolean(
            default=False,
            description="The request's 'model' replaces name (fastgw addition; Kong refuses "
            "a request naming another model).",
        ),
        "options": MODEL_OPTIONS,
    },
    required=True,
    description="The LLM requests go to.",
)

LOGGING = Record(
    {
        "log_statistics": Boolean(
            default=False, description="Add usage, cost and latency to the log entry (ai.proxy)."
        ),
        "log_payloads": Boolean(
            default=False, description="Add the request and response bodies to the log entry."
        ),
    },
    default={},
    description="What ai-proxy adds to the log entry of each request.",
)


def _require_option(config: dict, name: str, path: Path, ctx: Validation) -> None:
    model = config["model"]
    if model["options"][name] is None:
        ctx.error(
            (((path, "model"), "options"), name),
            f"must set 'model.options.{name}' for {model['provider']} provider",
        )


# Options each provider cannot do without (Kong's conditional_at_least_one_of checks).
_REQUIRED_OPTIONS = {
    "anthropic": ("anthropic_version",),
    "azure": ("azure_instance", "azure_api_version", "azure_deployment_id"),
    "mistral": ("mistral_format",),
    "llama2": ("llama2_format", "upstream_url"),
}


def check_target(config: dict, path: Path, ctx: Validation) -> bool:
    """The checks of one target (``route_type``, ``model`` and ``auth``);
    False when it has errors."""
    errors_before = len(ctx.errors)
    model = config["model"]
    provider = model["provider"]
    for name in _REQUIRED_OPTIONS.get(provider, ()):
        _require_option(config, name, path, ctx)
    if provider == "llama2" and model["options"]["llama2_format"] == "raw":
        ctx.error((((path, "model"), "options"), "llama2_format"),
                  "the 'raw' llama2 format is not supported by fastgw")
    if provider == "gemini" and config["auth"]["allow_override"]:
        ctx.error(((path, "auth"), "allow_override"),
                  "gemini only supports auth.allow_override = false")
    if len(ctx.errors) > errors_before:
        return False  # the checks below need a complete model
    route_type = config["route_type"]
    translator = get_translator(model_config(config))
    if translation_route(route_type) not in translator.route_types:
        ctx.error((path, "route_type"),
                  f"provider '{provider}' does not support route type '{route_type}'")
    for name in SAMPLING_OPTIONS:
        # A default the provider would refuse on every request: said now.
        if model["options"][name] is not None and name in translator.untranslatable_fields:
            ctx.error((((path, "model"), "options"), name),
                      f"provider '{provider}' does not support {name}")
    return len(ctx.errors) == errors_before


def check_front_door(llm_format: str, route_type: str, path: Path, ctx: Validation) -> None:
    if llm_format == "anthropic" and route_type != ROUTE_CHAT:
        ctx.error((path, "llm_format"),
                  f"llm_format 'anthropic' can only be used with the '{ROUTE_CHAT}' route_type")


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if check_target(config, path, ctx):
        check_front_door(config["llm_format"], config["route_type"], path, ctx)


ROUTE_TYPE = String(required=True, one_of=ROUTE_TYPES, description="The operation clients call.")

# The settings of the front door clients call (ai-proxy-advanced has them too).
FRONT_DOOR_FIELDS = {
    "llm_format": String(
        default="openai",
        one_of=LLM_FORMATS,
        description="The API clients speak: openai, or anthropic (Messages API).",
    ),
    "response_streaming": String(
        default="allow",
        one_of=("allow", "deny", "always"),
        description="Let clients ask for streamed answers, refuse them, or always stream.",
    ),
    "max_request_body_size": Integer(
        default=DEFAULT_MAX_REQUEST_BODY_SIZE,
        between=(1, 2**31 - 1),
        description="Largest request body, in bytes, ai-proxy reads (larger: 413).",
    ),
    "model_name_header": Boolean(
        default=True,
        description="Name the provider/model in the X-Kong-LLM-Model (and "
        "X-Fastgw-LLM-Model) response header.",
    ),
}

SCHEMA = Record(
    {
        "route_type": ROUTE_TYPE,
        "auth": AUTH,
        "model": MODEL,
        "logging": LOGGING,
        **FRONT_DOOR_FIELDS,
    },
    validator=_check,
    description="Proxy to an LLM provider, translating between APIs.",
)

__all__ = ["AUTH", "FRONT_DOOR_FIELDS", "LOGGING", "MODEL", "ROUTE_TYPE", "SCHEMA",
           "check_front_door", "check_target", "model_config"]
