"""Config of ai-semantic-cache, with the fields of Kong's plugin of that name.

Two layers: the exact one (``exact_caching``: an answer served again for a
request that is the same in everything that changes the answer) and the
similarity one (a near prompt, by the ``embeddings`` model's vectors within
``vectordb.threshold``, served the answer of a former one). ``vectordb.strategy``
is ``memory`` (fastgw's store and index in each worker's memory) or ``redis``
(shared by every worker and gateway; ``vectordb.redis`` is Kong's Redis
record, Sentinel and Cluster included, or ``_gateway.redis``); on Redis
only the exact layer is built so far, so ``fastgw check`` asks for
``similarity: false`` there rather than leave it out unsaid. ``pgvector`` is
refused.

fastgw's additions: ``similarity`` (the similarity layer on or off),
``share_across_consumers`` (an entry serves every consumer of the route; by
default only the one whose request made it), ``cache_tool_calls`` (answers
that call tools are stored too), and ``memory`` (the store's bounds)."""

from __future__ import annotations

from fastgw.config.schema import Boolean, Integer, Number, Path, Record, String, Validation
from fastgw.plugins.ai_proxy.schema import AUTH, MODEL
from fastgw.shared_redis.schema import REDIS, check_own_connection

NOT_BUILT = ("the similarity layer is not built on Redis yet: set similarity: false (the "
             "exact layer alone, shared by every gateway) or use vectordb.strategy memory")


def off(description: str) -> Boolean:
    """A setting that is off unless the config turns it on."""
    return Boolean(default=False, description=description)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    if not config["exact_caching"] and not config["similarity"]:
        ctx.error((path, "similarity"), "with exact_caching false, the similarity layer is "
                  "all there is: it cannot be off too")
    if config["similarity"] and config["vectordb"]["strategy"] == "redis":
        ctx.error((path, "similarity"), NOT_BUILT)
    if config["vectordb"]["strategy"] == "redis":
        check_own_connection(config["vectordb"]["redis"], ((path, "vectordb"), "redis"), ctx)
    if config["vectordb"]["strategy"] == "pgvector":
        ctx.error(((path, "vectordb"), "strategy"),
                  "'pgvector' is not supported by fastgw: use 'memory' or 'redis'")


SCHEMA = Record(
    {
        "embeddings": Record(
            {"auth": AUTH, "model": MODEL}, required=True,
            description="The embeddings model of the similarity layer (any provider ai-proxy "
            "speaks; model.options.upstream_url for a server of your own)."),
        "vectordb": Record(
            {
                "strategy": String(required=True, one_of=("memory", "redis", "pgvector"),
                                   description="Where entries are kept: this worker's "
                                   "memory, or Redis (shared by every gateway)."),
                "dimensions": Integer(required=True, between=(1, 65536),
                                      description="Size of the embedding vectors."),
                "distance_metric": String(required=True, one_of=("cosine", "euclidean"),
                                          description="How vectors are compared."),
                "threshold": Number(default=0.1, between=(0, 1e9),
                                    description="Largest distance that still counts as a hit."),
                "redis": REDIS,
            },
            required=True, description="The store of the similarity layer."),
        "cache_ttl": Integer(default=300, between=(1, 2**31 - 1),
                             description="Seconds an entry is served."),
        "exact_caching": off("Look up the exact request first."),
        "message_countback": Number(default=1, between=(1, 1000),
                                    description="Messages the similarity layer compares."),
        "ignore_system_prompts": off("Similarity layer: leave system "
                                         "messages out."),
        "ignore_assistant_prompts": off("Similarity layer: leave assistant "
                                            "messages out."),
        "ignore_tool_prompts": off("Similarity layer: leave tool messages out."),
        "cache_control": off("Honour the request's Cache-Control: no-store "
                                 "bypasses the cache, no-cache asks the model and stores the "
                                 "answer again (Refresh)."),
        "stop_on_failure": off("Refuse the request when the cache fails (else "
                                   "it goes to the model)."),
        "llm_format": String(default="openai", one_of=("openai", "anthropic"),
                             description="Kong's field: the route's front door (fastgw reads "
                             "it from ai-proxy)."),
        "similarity": Boolean(default=True,
                              description="fastgw: the similarity layer (a near prompt's answer "
                              "served; embeddings from the configured model). Off: the exact "
                              "layer alone, the only one built on Redis so far."),
        "share_across_consumers": off("An entry serves every consumer of the "
                                          "route, not only the one whose request made it."),
        "cache_tool_calls": off("Store answers that call tools too."),
        "memory": Record(
            {
                "max_entries": Integer(default=10_000, between=(1, 10_000_000),
                                       description="Entries kept at most (least recently "
                                       "served go first)."),
                "max_bytes": Integer(default=64 * 1024 * 1024, between=(1024, 2**40),
                                     description="Bytes of answers kept at most."),
            },
            default={}, description="Bounds of the memory store (per worker)."),
    },
    validator=_check,
    description="Serve repeated LLM requests from a cache, in the client's own mode.",
)
