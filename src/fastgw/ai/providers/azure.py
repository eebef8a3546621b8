"""Azure OpenAI: OpenAI's formats on a per-deployment URL, keyed by ``api-key``.

``https://{azure_instance}.openai.azure.com/openai/deployments/{deployment}/
chat/completions?api-version={azure_api_version}``; the deployment, not the
body's ``model``, selects the model.
"""

from __future__ import annotations

from urllib.parse import quote

from fastgw.ai.config import DEFAULT_AZURE_API_VERSION, ModelConfig
from fastgw.ai.openai_format import ROUTE_CHAT, ROUTE_COMPLETIONS, ROUTE_EMBEDDINGS
from fastgw.ai.providers.openai import OpenAITranslator

_OPERATIONS = {
    ROUTE_CHAT: "chat/completions",
    ROUTE_COMPLETIONS: "completions",
    ROUTE_EMBEDDINGS: "embeddings",
}
# stream_options is accepted from this api-version on; older ones reject it.
_FIRST_VERSION_WITH_STREAM_USAGE = "2024-09-01"


def _api_version(model: ModelConfig) -> str:
    return model.options.azure_api_version or DEFAULT_AZURE_API_VERSION


class AzureTranslator(OpenAITranslator):
    name = "azure"
    route_types = frozenset(_OPERATIONS)
    # Azure OpenAI refuses it (OpenAI has none); said before the call.
    untranslatable_fields = ("top_k",)

    def base_url(self, model: ModelConfig) -> str:
        instance = model.options.azure_instance
        if not instance:
            raise ValueError("model.options.azure_instance is required for the azure provider")
        return f"https://{instance}.openai.azure.com"

    def endpoint_path(
        self, route_type: str, model: ModelConfig, model_name: str, stream: bool
    ) -> str:
        deployment = quote(model.options.azure_deployment_id or model_name, safe="")
        version = quote(_api_version(model), safe="")
        return f"/openai/deployments/{deployment}/{_OPERATIONS[route_type]}?api-version={version}"

    def requests_stream_usage(self, model: ModelConfig) -> bool:
        # api-versions are ISO dates, optionally with "-preview": text order is date order.
        return _api_version(model)[:10] >= _FIRST_VERSION_WITH_STREAM_USAGE
