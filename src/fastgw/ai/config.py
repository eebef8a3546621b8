"""The model a translator talks to: Kong ai-proxy's ``model`` and ``auth`` records.

Field names mirror Kong's ``kong/llm/schemas/init.lua`` so a Kong config can be
brought over unchanged. Validation (required fields per provider, bounds)
belongs to the ai-proxy plugin schema; these objects only carry the validated
values, are immutable, and are built once per config version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
# Kong defaults to 2023-05-15, which predates tools and stream usage; this is
# the newest GA api-version with both.
DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_GEMINI_API_VERSION = "v1beta"
# Model options that fill the request fields of the same name a request
# leaves unset (Kong's rule).
SAMPLING_OPTIONS = ("temperature", "top_p", "top_k")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    header_name: str | None = None  # e.g. "Authorization", "x-api-key", "api-key"
    header_value: str | None = None  # the full value, e.g. "Bearer sk-..."
    param_name: str | None = None  # e.g. "key" for Gemini
    param_value: str | None = None
    param_location: str | None = None  # "query" or "body"
    allow_override: bool = False  # the client's own credential may replace this one


@dataclass(frozen=True, slots=True)
class GeminiOptions:
    api_endpoint: str | None = (
        None  # Vertex AI regional host, e.g. "us-central1-aiplatform.googleapis.com"
    )
    project_id: str | None = None  # Vertex AI project
    location_id: str | None = None  # Vertex AI location
    api_version: str = DEFAULT_GEMINI_API_VERSION  # Google AI Studio only (fastgw addition)

    @property
    def vertex(self) -> bool:
        return bool(self.api_endpoint and self.project_id and self.location_id)


@dataclass(frozen=True, slots=True)
class ModelOptions:
    max_tokens: int | None = None  # default for requests that set none
    input_cost: float | None = None  # per 1M prompt tokens
    output_cost: float | None = None  # per 1M completion tokens
    cache_read_cost: float | None = None  # per 1M prompt tokens read from the prompt cache
    cache_write_cost: float | None = None  # per 1M prompt tokens written to it
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    anthropic_version: str | None = None  # "anthropic-version" header; 2023-06-01 if unset
    azure_instance: str | None = None  # <instance>.openai.azure.com
    azure_api_version: str | None = None
    azure_deployment_id: str | None = None  # the model name when unset
    mistral_format: str | None = None  # "openai" or "ollama"
    upstream_url: str | None = None  # full operation URL, or a base URL with no path
    upstream_path: str | None = None  # replaces the provider's default path
    # What the model can serve (fastgw; fastgw.ai.capabilities' table when unset).
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] | None = None
    gemini: GeminiOptions = field(default_factory=GeminiOptions)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    provider: str  # openai, azure, anthropic, gemini, mistral, ollama
    name: str | None = None  # wins over the request's "model" when set
    options: ModelOptions = field(default_factory=ModelOptions)
    auth: AuthConfig = field(default_factory=AuthConfig)

    @classmethod
    def from_kong(cls, model: dict[str, Any], auth: dict[str, Any] | None = None) -> ModelConfig:
        """Build from Kong's ``config.model`` and ``config.auth`` records (already validated)."""
        options = dict(model.get("options") or {})
        gemini = GeminiOptions(**_known(GeminiOptions, options.pop("gemini", None) or {}))
        if options.get("capabilities") is not None:
            options["capabilities"] = tuple(options["capabilities"])
        return cls(
            provider=model["provider"],
            name=model.get("name"),
            options=ModelOptions(gemini=gemini, **_known(ModelOptions, options)),
            auth=AuthConfig(**_known(AuthConfig, auth or {})),
        )


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    # Kong records carry fields fastgw does not use (Bedrock, cloud identities);
    # None means "unset" in Kong's declarative output, so dataclass defaults apply.
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in values.items() if key in names and value is not None}
