"""Config of ai-proxy-advanced, with Kong's field names and defaults
(``kong/plugins/ai-proxy-advanced/schema.lua``): ``targets``, each an
ai-proxy model with a ``weight`` and a ``description``, and the ``balancer``.

fastgw differs from Kong where ``docs/kong-compatibility.md`` says: targets
may mix providers (a request that fails over is translated again for the
next one), ``priority`` groups come from ``targets[].priority`` (lower first),
``latency_strategy`` also has ``ttft``, ``lowest-cost`` is fastgw's, and the
``semantic`` algorithm keeps its few description vectors in each worker's
memory whatever ``vectordb.strategy`` says (fastgw.ai.semantic_routing).
"""

from __future__ import annotations

from fastgw._core.balancer import DEFAULT_SLOTS, DEFAULT_WEIGHT, MAX_SLOTS, MAX_WEIGHT, MIN_SLOTS
from fastgw.ai.complexity import TIERS
from fastgw.config.schema import (
    Array,
    Boolean,
    Integer,
    Number,
    Path,
    Record,
    Set,
    String,
    Validation,
)
from fastgw.plugins.ai_proxy.schema import (
    AUTH,
    FRONT_DOOR_FIELDS,
    LOGGING,
    MODEL,
    ROUTE_TYPE,
    check_front_door,
    check_target,
)
from fastgw.shared_redis.schema import REDIS

ALGORITHMS = ("round-robin", "lowest-latency", "lowest-usage", "consistent-hashing", "priority",
              "semantic", "lowest-cost", "complexity")
# What a failed attempt can be, as nginx's proxy_next_upstream names it.
FAILOVER_CRITERIA = ("error", "timeout", "invalid_header", "http_500", "http_502", "http_503",
                     "http_504", "http_403", "http_404", "http_429", "non_idempotent")
MAX_TIMEOUT = 2**31 - 2


def _check_target(target: dict, path: Path, ctx: Validation) -> None:
    check_target(target, path, ctx)


TARGET = Record(
    {
        "route_type": ROUTE_TYPE,
        "auth": AUTH,
        "model": MODEL,
        "logging": LOGGING,
        "weight": Integer(
            default=DEFAULT_WEIGHT,
            between=(1, MAX_WEIGHT),
            description="The target's share of traffic (round-robin, consistent-hashing, "
            "priority within a group; lowest-* divide their cost by it).",
        ),
        "description": String(
            description="What the model is for (Kong's semantic balancer reads it)."
        ),
        "tier": String(
            one_of=TIERS,
            description="The complexity algorithm's tier this target serves (fastgw).",
        ),
        "priority": Integer(
            default=1,
            between=(1, 1000),
            description="The target's group for the priority algorithm: group 1 takes all "
            "traffic while any of its targets is up, then group 2, and so on (fastgw addition).",
        ),
    },
    validator=_check_target,
    description="One model requests may go to.",
)


def _timeout(description: str) -> Integer:
    return Integer(default=60000, between=(1, MAX_TIMEOUT), description=description)


VECTORDB = Record(
    {
        "strategy": String(default="memory", one_of=("memory", "redis", "pgvector"),
                           description="Kong's field; the descriptions' few vectors are "
                           "kept in each worker's memory whatever it says."),
        "dimensions": Integer(required=True, between=(1, 65536),
                              description="Size of the embedding vectors."),
        "distance_metric": String(required=True, one_of=("cosine", "euclidean"),
                                  description="How a prompt and a description are compared."),
        "threshold": Number(default=0.5, between=(0, 1e9),
                            description="Largest distance at which a description still "
                            "matches a prompt."),
        "redis": REDIS,
    },
    description="The semantic balancer's vectors.",
)


BALANCER = Record(
    {
        "algorithm": String(
            default="round-robin",
            one_of=ALGORITHMS,
            description="How a target is chosen: weighted round-robin, lowest-latency, "
            "lowest-usage, consistent-hashing on a header, priority groups, the "
            "cheapest target that can serve the request (lowest-cost, fastgw), the nearest "
            "description (semantic), or the prompt's complexity tier (complexity, fastgw).",
        ),
        "tokens_count_strategy": String(
            default="total_tokens",
            one_of=("total_tokens", "prompt_tokens", "completion_tokens", "cost"),
            description="What lowest-usage counts per answer: tokens of a kind, or its cost.",
        ),
        "latency_strategy": String(
            default="tpot",
            one_of=("tpot", "e2e", "ttft"),
            description="What lowest-latency measures: time per output token, the whole "
            "answer, or the time to the first token (fastgw addition).",
        ),
        "hash_on_header": String(
            default="X-Kong-LLM-Request-ID",
            description="The request header consistent-hashing hashes (none sent: round-robin).",
        ),
        "budget_downgrade": Record(
            {
                "tier": String(required=True, one_of=TIERS,
                               description="The targets (by their tier) to fall to."),
                "below_share": Number(required=True, between=(0.0, 1.0),
                                      description="Fall when a money window of "
                                      "ai-rate-limiting-advanced would have less than this "
                                      "share of its limit left."),
            },
            description="Instead of a 429, or as a consumer's money runs low, send the "
            "request to a cheaper tier's targets (fastgw).",
        ),
        "expose_route_reason": Boolean(
            default=False,
            description="Tell the client why its target was chosen, in the "
            "X-Fastgw-Route-Reason response header (fastgw).",
        ),
        "stream_continuation": Boolean(
            default=False,
            description="When a streamed answer breaks off after it began (the connection "
            "cut, a timeout, the provider's error event), ask the next capable target for "
            "the rest and keep writing the same stream (fastgw; llm/v1/chat only).",
        ),
        "slots": Integer(
            default=DEFAULT_SLOTS,
            between=(MIN_SLOTS, MAX_SLOTS),
            description="Buckets of the consistent-hashing ring.",
        ),
        "retries": Integer(
            default=5,
            between=(0, 32767),
            description="How many more targets one request may try after the first fails.",
        ),
        "connect_timeout": _timeout("Milliseconds to connect to a target."),
        "write_timeout": _timeout("Milliseconds between two writes of the request."),
        "read_timeout": _timeout("Milliseconds between two reads of the answer."),
        "failover_criteria": Set(
            String(one_of=FAILOVER_CRITERIA),
            default=("error", "timeout"),
            description="Which failures move a request to the next target (nginx's "
            "proxy_next_upstream): error, timeout, invalid_header, http_<status>; a request "
            "that went out is retried only with non_idempotent (LLM calls are POSTs).",
        ),
        "max_fails": Integer(
            default=0,
            between=(0, 32767),
            description="Failures within fail_timeout that open a target's circuit for "
            "fail_timeout (0: never).",
        ),
        "fail_timeout": Integer(
            default=10000,
            between=(1, MAX_TIMEOUT),
            description="Milliseconds that failures are counted over, and that an open "
            "circuit stays open.",
        ),
    },
    default={},
    description="How targets are chosen, retried and taken out.",
)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    targets = config["targets"] or []
    route_types = {target["route_type"] for target in targets if target}
    if len(route_types) > 1:
        ctx.error((path, "targets"), "mixing different route types are not supported")
    elif route_types:
        check_front_door(config["llm_format"], route_types.pop(), path, ctx)
    if config["balancer"]["stream_continuation"] and \
            any(target and target["route_type"] != "llm/v1/chat" for target in targets):
        ctx.error(((path, "balancer"), "stream_continuation"),
                  "continues llm/v1/chat streams only")
    if config["balancer"]["algorithm"] == "semantic":
        for field in ("embeddings", "vectordb"):
            if config[field] is None:
                ctx.error((path, field), "required by the semantic algorithm")
        for index, target in enumerate(targets):
            if target and not target.get("description"):
                ctx.error((((path, "targets"), index), "description"),
                          "required by the semantic algorithm (what the model is for, or "
                          "CATCHALL for where other prompts go)")
    if config["balancer"]["algorithm"] == "complexity":
        for index, target in enumerate(targets):
            if target and target.get("tier") is None:
                ctx.error((((path, "targets"), index), "tier"), "required by the complexity "
                          "algorithm (simple, medium, complex or reasoning)")
    downgrade = config["balancer"]["budget_downgrade"]
    if downgrade is not None and not any(
            target and target.get("tier") == downgrade["tier"] for target in targets):
        ctx.error((((path, "balancer"), "budget_downgrade"), "tier"),
                  f"no target has tier '{downgrade['tier']}'")
    if config["balancer"]["algorithm"] == "lowest-cost":
        for index, target in enumerate(targets):
            options = (target or {}).get("model", {}).get("options") or {}
            for price in ("input_cost", "output_cost"):
                if options.get(price) is None:
                    ctx.error(((((((path, "targets"), index), "model"), "options"), price)),
                              "required by the lowest-cost algorithm (what the target's "
                              "tokens cost)")


SCHEMA = Record(
    {
        "balancer": BALANCER,
        "targets": Array(TARGET, required=True, len_min=1, len_max=64,
                         description="The models requests are balanced over."),
        "embeddings": Record({"auth": AUTH, "model": MODEL},
                             description="The semantic balancer's embeddings model (any "
                             "provider ai-proxy speaks)."),
        "vectordb": VECTORDB,
        **FRONT_DOOR_FIELDS,
    },
    validator=_check,
    description="Balance LLM requests over several models and providers, failing over "
    "before the answer starts.",
)


__all__ = ["SCHEMA"]
