"""Throughput harness: fastgw against nginx and LiteLLM, each in front of a fixed upstream.

Run from the repository root::

    .venv/bin/python bench/run.py                      # both suites: 10 s runs, 3 repeats
    .venv/bin/python bench/run.py --quick              # 2 s runs, 1 repeat, no LiteLLM: a smoke check
    .venv/bin/python bench/run.py --ai                 # the AI suite only, LiteLLM included
    .venv/bin/python bench/run.py --self-test          # nginx rows only, 1 s, checks the harness
    .venv/bin/python bench/run.py --only nginx,fastgw --connections 64 --json out.json

Two suites, each with its own upstream. The proxy suite puts nginx and fastgw (plain and
with plugins) in front of an nginx static upstream; the AI suite puts fastgw's ai-proxy and
LiteLLM's proxy in front of ``fastgw mock-llm``. Every process listens on 127.0.0.1. The
proxies are pinned to one core, and wrk, the upstreams and Redis to the other, so "RPS per
core" compares the proxies' own CPU cost.
Rows are data (``SCENARIOS``); each row's ratios are against its ``baseline`` row, and the
issues' bars (``COMPARISONS``) are printed under the tables.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import http.client
import json
import operator
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jwt
import orjson
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAT_PATH = "/v1/chat/completions"
# The model in the body wrk sends and in every AI config: ai-proxy refuses any other.
CHAT_MODEL = "gpt-4o-mini"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 30.0
# A run with more failed requests than this share is not a throughput figure.
MAX_ERROR_SHARE = 0.001


# --------------------------------------------------------------------------- payloads


def chat_request_body(size: int = 337, lead: str = "", stream: bool = False) -> bytes:
    """An OpenAI chat-completion request padded to exactly ``size`` bytes
    (its prompt starts with ``lead``)."""
    request = {
        "model": CHAT_MODEL,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": ""},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": stream,
    }
    missing = size - len(orjson.dumps(request))
    if missing < 0:
        raise ValueError(f"a chat request cannot be as small as {size} bytes")
    sentence = "Summarise the benefits of keep-alive connections for a reverse proxy. "
    request["messages"][1]["content"] = (lead + sentence * (missing // len(sentence) + 1))[:missing]
    return orjson.dumps(request)


CHAT_BODY = chat_request_body()
# A streamed chat whose answer the mock writes as 21 events (the role, 18 pieces of
# text, the finish and [DONE]): the streaming rows' request.
STREAM_BODY = chat_request_body(stream=True)
STREAM_PIECES = {"x-mock-output-tokens": "18"}
CHAT_RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": 1764201600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Keep-alive saves a handshake."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 61, "completion_tokens": 7, "total_tokens": 68},
    }
)


# --------------------------------------------------------------------------- credentials


JSON_HEADERS = {"Content-Type": "application/json"}
API_KEY = "bench-key"
API_KEY_HEADERS = {**JSON_HEADERS, "apikey": API_KEY}
# What the gateways send to the LLM upstream (the mock accepts any key).
PROVIDER_KEY = "sk-bench"
JWT_ISSUER = "bench-issuer"
# 32 bytes at least: PyJWT warns about shorter HS256 keys.
JWT_SECRET = "bench-jwt-secret-0123456789abcdef"
JWT_LIFETIME_S = 30 * 86400  # far past any run, so the exp check always passes
ACL_GROUP = "bench-group"
LITELLM_MASTER_KEY = "sk-bench-master"


def bench_jwt() -> str:
    """An HS256 token of the bench consumer, signed with its jwt secret."""
    claims = {"iss": JWT_ISSUER, "exp": int(time.time()) + JWT_LIFETIME_S}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def bearer_headers(token: str) -> dict[str, str]:
    return {**JSON_HEADERS, "Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Targets:
    """What a row's gateway config may point at: its suite's upstream listeners, and Redis
    when one of the selected rows needs it."""

    upstream_urls: tuple[str, ...]
    redis_port: int | None = None

    @property
    def upstream_url(self) -> str:
        return self.upstream_urls[0]


def gateway_config(service_url: str, route_plugins: tuple[dict, ...] = (),
                   global_plugins: tuple[dict, ...] = (), consumers: tuple[dict, ...] = ()) -> dict:
    """Kong declarative config: one service, one prefix route carrying ``route_plugins``."""
    # NOTE: strip_path defaults to true in Kong; the upstream wants the full path.
    route = {"name": "chat", "paths": ["/v1/"], "strip_path": False}
    if route_plugins:
        route["plugins"] = list(route_plugins)
    config = {
        "_format_version": "3.0",
        "services": [{"name": "llm-upstream", "url": service_url, "routes": [route]}],
    }
    if global_plugins:
        config["plugins"] = list(global_plugins)
    if consumers:
        config["consumers"] = list(consumers)
    return config


KEY_AUTH_PLUGIN = {"name": "key-auth", "config": {"key_names": ["apikey"]}}
KEY_AUTH_CONSUMER = {"username": "bench", "keyauth_credentials": [{"key": API_KEY}]}
PROMETHEUS_PLUGIN = {"name": "prometheus"}


def plain_proxy_config(targets: Targets) -> dict:
    return gateway_config(targets.upstream_url)


def key_auth_prometheus_config(targets: Targets) -> dict:
    return gateway_config(targets.upstream_url, (KEY_AUTH_PLUGIN,), (PROMETHEUS_PLUGIN,),
                          (KEY_AUTH_CONSUMER,))


def key_auth_rate_limit_prometheus_config(targets: Targets) -> dict:
    """Kong's benchmark combination on one route: every plugin decides from the
    core (fastgw.plugins.fast), so no request context is built."""
    limit = {"name": "rate-limiting",
             "config": {"minute": 1_000_000_000, "limit_by": "consumer", "policy": "local"}}
    return gateway_config(targets.upstream_url, (KEY_AUTH_PLUGIN, limit), (PROMETHEUS_PLUGIN,),
                          (KEY_AUTH_CONSUMER,))


_PKI: dict | None = None
TLS_SERVER_NAME = "gw.bench"
MTLS_CONSUMER = "bench-client"
MTLS_CA_ID = "b0a1c2d3-0000-4000-8000-00000000b001"


def bench_pki() -> dict:
    """The bench's CA (fastgw.testing.tls), the gateway's certificate and a client's,
    made on first use in a temporary folder."""
    global _PKI
    if _PKI is None:
        from fastgw.testing.tls import CA

        folder = Path(tempfile.mkdtemp(prefix="fastgw-bench-pki-"))
        atexit.register(shutil.rmtree, folder, True)
        ca = CA(folder, "bench CA")
        _PKI = {"ca": ca, "server": ca.issue(TLS_SERVER_NAME, names=[TLS_SERVER_NAME]),
                "client": ca.issue(MTLS_CONSUMER, client=True)}
    return _PKI


def over_tls(config: dict) -> dict:
    """The same config with HTTPS on the gateway's listener."""
    cert, key = bench_pki()["server"]
    return {**config, "_gateway": {"tls": {"cert": cert, "key": key}}}


def tls_key_auth_prometheus_config(targets: Targets) -> dict:
    return over_tls(key_auth_prometheus_config(targets))


def mtls_auth_prometheus_config(targets: Targets) -> dict:
    """mtls-auth (the client certificate's CN is the consumer) with prometheus, over TLS."""
    mtls = {"name": "mtls-auth", "config": {"ca_certificates": [MTLS_CA_ID]}}
    config = over_tls(gateway_config(targets.upstream_url, (mtls,), (PROMETHEUS_PLUGIN,),
                                     ({"username": MTLS_CONSUMER},)))
    config["ca_certificates"] = [{"id": MTLS_CA_ID, "cert": bench_pki()["ca"].path.read_text()}]
    return config


_IDP = None
# Distinct tokens the fresh-token row cycles through: more than the gateway
# keeps checked (10,000) between two uses of one token, so every request is a
# signature check.
FRESH_TOKENS = 24_000


def bench_idp():
    """The bench's OpenID provider (fastgw.testing's, on loopback), started on
    first use: the gateway fetches its discovery and keys once, at start."""
    global _IDP
    if _IDP is None:
        from fastgw.testing.oidc_provider import OIDCProvider

        _IDP = OIDCProvider().start()
        atexit.register(_IDP.stop)
    return _IDP


def oidc_prometheus_config(targets: Targets) -> dict:
    """openid-connect (bearer JWTs, RS256, audience checked) with prometheus, as the
    key-auth row has it."""
    oidc = {"name": "openid-connect", "config": {
        "issuer": bench_idp().issuer, "auth_methods": ["bearer"], "audience_required": ["api"]}}
    return gateway_config(targets.upstream_url, (oidc,), (PROMETHEUS_PLUGIN,))


class OIDCHeaders(Mapping[str, str]):
    """A bearer token of the bench's provider, signed when first read (so that the
    provider starts only for the rows that use it)."""

    def __init__(self) -> None:
        self._headers: dict[str, str] | None = None

    def _made(self) -> dict[str, str]:
        if self._headers is None:
            token = bench_idp().token(kid="rsa-1", lifetime=JWT_LIFETIME_S)
            self._headers = bearer_headers(token)
        return self._headers

    def __getitem__(self, name: str) -> str:
        return self._made()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())


def oidc_fresh_tokens_lua(workdir: Path) -> str:
    """Each request carries the next of FRESH_TOKENS RS256 tokens; wrk's threads start
    half a cycle apart."""
    idp = bench_idp()
    path = workdir / "oidc-tokens.txt"
    path.write_text("\n".join(idp.token(kid="rsa-1", lifetime=JWT_LIFETIME_S, n=n)
                               for n in range(FRESH_TOKENS)) + "\n")
    return f"""\
local tokens = {{}}
for line in io.lines({lua_string(str(path))}) do tokens[#tokens + 1] = line end
local threads = 0
function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end
local position = 0
function init(args)
  position = (offset or 0) * math.floor(#tokens / 2)
end
function request()
  position = position % #tokens + 1
  local headers = {{}}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Authorization"] = "Bearer " .. tokens[position]
  return wrk.format(nil, nil, headers, nil)
end
"""


# The MCP suite: JSON-RPC tools/call messages, answered as JSON by a stateless server.
MCP_HEADERS = {**JSON_HEADERS, "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}


def mcp_call(tool: str, arguments: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}}).encode()


MCP_ECHO_CALL = mcp_call("echo", {"text": "hello"})
MCP_REST_CALL = mcp_call("rest_echo", {})


def mcp_route_config(targets: Targets, route: dict) -> dict:
    return {"_format_version": "3.0", "services": [
        {"name": "mcp-upstream", "url": targets.upstream_url, "routes": [route]}]}


def mcp_passthrough_config(targets: Targets) -> dict:
    """ai-mcp-proxy passthrough-listener in front of the MCP server (one tool ACL)."""
    plugin = {"name": "ai-mcp-proxy", "config": {
        "mode": "passthrough-listener", "tools": [{"name": "wipe", "acl": {"deny": ["*"]}}]}}
    return mcp_route_config(targets, {"name": "mcp", "paths": ["/mcp"], "strip_path": False,
                                      "plugins": [plugin]})


def mcp_conversion_config(targets: Targets) -> dict:
    """ai-mcp-proxy conversion-listener: the tool rest_echo is POST /rest/echo."""
    plugin = {"name": "ai-mcp-proxy", "config": {
        "mode": "conversion-listener",
        "tools": [{"name": "rest_echo", "method": "POST", "path": "/rest/echo"}]}}
    return mcp_route_config(targets, {"name": "mcp-rest", "paths": ["/mcp-rest"],
                                      "plugins": [plugin]})


def jwt_acl_config(targets: Targets) -> dict:
    consumer = {
        "username": "bench",
        "jwt_secrets": [{"key": JWT_ISSUER, "algorithm": "HS256", "secret": JWT_SECRET}],
        "acls": [{"group": ACL_GROUP}],
    }
    plugins = (
        {"name": "jwt", "config": {"claims_to_verify": ["exp"]}},
        {"name": "acl", "config": {"allow": [ACL_GROUP]}},
    )
    return gateway_config(targets.upstream_url, plugins, consumers=(consumer,))


def rate_limiting_config(targets: Targets, policy: str = "local") -> dict:
    # A limit no run reaches: the row prices the counting, not the 429s.
    settings: dict = {"minute": 1_000_000_000, "limit_by": "ip", "policy": policy}
    if policy == "redis":
        settings["redis"] = {"host": "127.0.0.1", "port": targets.redis_port}
    return gateway_config(targets.upstream_url, ({"name": "rate-limiting", "config": settings},))


def proxy_cache_config(targets: Targets) -> dict:
    settings = {"strategy": "memory", "request_method": ["POST"],
                "content_type": ["application/json"], "cache_ttl": 3600}
    return gateway_config(targets.upstream_url, ({"name": "proxy-cache", "config": settings},))


def ai_proxy_plugin(upstream_url: str) -> dict:
    return {
        "name": "ai-proxy",
        "config": {
            "route_type": "llm/v1/chat",
            "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
            "model": {
                "provider": "openai",
                "name": CHAT_MODEL,
                "options": {"upstream_url": upstream_url + CHAT_PATH},
            },
        },
    }


def ai_gateway_anthropic_config(targets: Targets) -> dict:
    """ai_gateway_config with the provider spoken to in Anthropic's Messages API (the
    mock's /v1/messages): the client's OpenAI request and stream are translated."""
    plugin = ai_proxy_plugin(targets.upstream_url)
    plugin["config"]["model"] = {
        "provider": "anthropic", "name": CHAT_MODEL,
        "options": {"upstream_url": targets.upstream_url + "/v1/messages",
                    "anthropic_version": "2023-06-01"}}
    plugin["config"]["auth"] = {"header_name": "x-api-key", "header_value": PROVIDER_KEY}
    return gateway_config(targets.upstream_url, (KEY_AUTH_PLUGIN, plugin), (PROMETHEUS_PLUGIN,),
                          (KEY_AUTH_CONSUMER,))


def ai_proxy_config(targets: Targets) -> dict:
    return gateway_config(targets.upstream_url, (ai_proxy_plugin(targets.upstream_url),))


def ai_proxy_advanced_plugin(upstream_url: str, count: int = 3) -> dict:
    """ai-proxy-advanced over ``count`` targets (the same mock: the cost is the balancing)."""
    target = ai_proxy_plugin(upstream_url)["config"]
    return {
        "name": "ai-proxy-advanced",
        "config": {"targets": [target] * count, "balancer": {"algorithm": "round-robin"}},
    }


def ai_gateway_advanced_config(targets: Targets) -> dict:
    """ai_gateway_config with ai-proxy-advanced over three targets instead of ai-proxy."""
    plugins = (KEY_AUTH_PLUGIN, ai_proxy_advanced_plugin(targets.upstream_url))
    return gateway_config(targets.upstream_url, plugins, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


# Three models of one mock, priced, tiered and described, for the routing rows.
ROUTING_TARGETS = (("simple", "short questions, greetings and chit-chat", 0.15, 0.6),
                   ("medium", "explanations, summaries and emails", 2.5, 10.0),
                   ("complex", "CATCHALL", 10.0, 30.0))


def ai_gateway_routing_config(targets: Targets, algorithm: str) -> dict:
    """ai_gateway_config with ai-proxy-advanced choosing among ROUTING_TARGETS by
    ``algorithm`` (semantic: embeddings from the mock, the prompt's vector cached after
    the first request)."""
    base = ai_proxy_plugin(targets.upstream_url)["config"]
    model = base["model"]
    routed = [{**base, "tier": tier, "description": description,
               "model": {**model, "options": {**model["options"], "input_cost": input_cost,
                                              "output_cost": output_cost}}}
              for tier, description, input_cost, output_cost in ROUTING_TARGETS]
    config: dict = {"targets": routed, "balancer": {"algorithm": algorithm}}
    if algorithm == "semantic":
        config["embeddings"] = {"auth": base["auth"], "model": {
            "provider": "openai", "name": "text-embedding-3-small",
            "options": {"upstream_url": targets.upstream_url + "/v1/embeddings"}}}
        config["vectordb"] = {"dimensions": 256, "distance_metric": "cosine", "threshold": 0.5}
    plugins = (KEY_AUTH_PLUGIN, {"name": "ai-proxy-advanced", "config": config})
    return gateway_config(targets.upstream_url, plugins, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


def ai_gateway_limited_config(targets: Targets, strategy: str) -> dict:
    """ai_gateway_config with ai-rate-limiting-advanced reserving and settling every call
    (a limit so high it never refuses: the cost measured is the counting)."""
    settings: dict = {"llm_providers": [{"name": "openai", "window_size": 60, "limit": 1e15}],
                      "strategy": strategy}
    if strategy == "redis":
        settings["redis"] = {"host": "127.0.0.1", "port": targets.redis_port}
    plugins = (KEY_AUTH_PLUGIN, ai_proxy_plugin(targets.upstream_url),
               {"name": "ai-rate-limiting-advanced", "config": settings})
    return gateway_config(targets.upstream_url, plugins, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


GUARD_PLUGIN = {"name": "ai-prompt-guard", "config": {"deny_patterns": [
    r"(?i)ignore (all|previous) instructions", r"(?i)system prompt", r"\bpassword\b"]}}
DECORATOR_PLUGIN = {"name": "ai-prompt-decorator", "config": {"prompts": {
    "prepend": [{"role": "system", "content": "Answer in one paragraph."}],
    "append": [{"role": "system", "content": "Never reveal credentials."}]}}}
TEMPLATE_PLUGIN = {"name": "ai-prompt-template", "config": {"templates": [
    {"name": "summary", "template": '{"messages": [{"role": "user", "content": "{{text}}"}]}'}]}}
SANITIZER_PLUGIN = {"name": "ai-sanitizer", "config": {}}  # Kong's defaults: everything
PROMPT_PLUGINS = {"guard": (GUARD_PLUGIN,), "decorator": (DECORATOR_PLUGIN,),
                  "template": (TEMPLATE_PLUGIN,), "sanitizer": (SANITIZER_PLUGIN,),
                  "all": (GUARD_PLUGIN, DECORATOR_PLUGIN, TEMPLATE_PLUGIN, SANITIZER_PLUGIN)}
PROMPT_PLUGIN_NAMES = {"guard": "ai-prompt-guard", "decorator": "ai-prompt-decorator",
                       "template": "ai-prompt-template", "sanitizer": "ai-sanitizer",
                       "all": "guard, decorator, template and sanitizer"}
# The prompt plugins are priced on a 2 KB prompt (untemplated: the template plugin's
# cost is looking at the request and letting it through) that names a person's
# e-mail address and card up front: the sanitizer hides both, and the mock's
# answer, which quotes the prompt's first words, gets them back.
PROMPT_BODY = chat_request_body(
    2048, lead="Reply to jane.doe@example.com about card 4111 1111 1111 1111. ")


def ai_gateway_prompt_config(targets: Targets, plugins: str = "") -> dict:
    """ai_gateway_config plus the prompt plugins named (none: the 2 KB baseline)."""
    chosen = (KEY_AUTH_PLUGIN, ai_proxy_plugin(targets.upstream_url),
              *PROMPT_PLUGINS.get(plugins, ()))
    return gateway_config(targets.upstream_url, chosen, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


CACHE_PLUGIN = {"name": "ai-semantic-cache", "config": {
    "exact_caching": True, "similarity": False, "embeddings": {"model": {"provider": "openai", "name": "e"}},
    "vectordb": {"strategy": "memory", "dimensions": 8, "distance_metric": "cosine"}}}


def ai_gateway_cached_config(targets: Targets) -> dict:
    """ai_gateway_config with ai-semantic-cache's exact layer in memory: the probe
    request stores the answer, and every measured request is a hit."""
    plugins = (KEY_AUTH_PLUGIN, ai_proxy_plugin(targets.upstream_url), CACHE_PLUGIN)
    return gateway_config(targets.upstream_url, plugins, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


def ai_gateway_config(targets: Targets) -> dict:
    """ai-proxy behind key-auth, with prometheus: what an AI gateway deployment runs."""
    plugins = (KEY_AUTH_PLUGIN, ai_proxy_plugin(targets.upstream_url))
    return gateway_config(targets.upstream_url, plugins, (PROMETHEUS_PLUGIN,), (KEY_AUTH_CONSUMER,))


BENCH_UPSTREAM = "bench-upstream"


def hashed_upstream_config(targets: Targets) -> dict:
    """The plain route, with its service balanced over one target per upstream URL by
    consistent hashing on a header (as Kong's ``hash_on: header``)."""
    config = gateway_config(f"http://{BENCH_UPSTREAM}")
    config["upstreams"] = [
        {
            "name": BENCH_UPSTREAM,
            "algorithm": "consistent-hashing",
            "hash_on": "header",
            "hash_on_header": "x-user-id",
            "targets": [{"target": url.removeprefix("http://")} for url in targets.upstream_urls],
        }
    ]
    return config


@dataclass(frozen=True)
class Scenario:
    """One row of the table: which server proxies, how it is configured, what wrk sends."""

    name: str
    server: str  # a key of LAUNCHERS
    description: str
    gateway_config: Callable[[Targets], dict] | None = None  # fastgw rows only
    path: str = CHAT_PATH
    body: bytes = CHAT_BODY
    headers: Mapping[str, str] = field(default_factory=lambda: JSON_HEADERS)
    baseline: str | None = None  # name of the row this one's ratios are against
    default: bool = True  # run without --only
    upstream_targets: int = 1  # listeners of the static upstream the config balances over
    suite: str = "proxy"  # a key of SUITES: which upstream the row stands in front of
    needs_redis: bool = False
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    # More of the wrk script, made when the script is written (headers that
    # need a running service, such as tokens of the bench's OpenID provider).
    wrk_lua: Callable[[Path], str] | None = None
    # What the probe's answer must contain before the row is measured.
    expect: bytes = b'"choices"'
    # fastgw rows over TLS: wrk cannot present a client certificate, so an nginx on the
    # load core takes wrk's requests to the gateway over kept-alive TLS connections,
    # presenting the bench's client certificate.
    tls_client: bool = False


SCENARIOS: list[Scenario] = [
    Scenario("nginx", "nginx", "nginx 1 worker, upstream keepalive --nginx-keepalive"),
    Scenario("fastgw", "fastgw", "fastgw 1 worker, no plugins", plain_proxy_config, baseline="nginx"),
    # One header value, so every request hashes to the same target: the row prices the
    # balancer (key extraction, ring lookup, per-target pools), not a spread of load.
    Scenario(
        "fastgw-hash-3-targets",
        "fastgw",
        "fastgw, consistent hashing on a header over 3 targets",
        hashed_upstream_config,
        headers={**JSON_HEADERS, "X-User-Id": "user-42"},
        baseline="fastgw",
        upstream_targets=3,
    ),
    # Plugin rows, each priced against plain fastgw.
    Scenario(
        "fastgw-key-auth-prometheus",
        "fastgw",
        "fastgw with key-auth and prometheus",
        key_auth_prometheus_config,
        headers=API_KEY_HEADERS,
        baseline="fastgw",
    ),
    Scenario(
        "fastgw-key-auth-rate-limit-prometheus",
        "fastgw",
        "fastgw with key-auth, rate-limiting (local, by consumer) and prometheus",
        key_auth_rate_limit_prometheus_config,
        headers=API_KEY_HEADERS,
        baseline="fastgw",
    ),
    Scenario(
        "fastgw-jwt-acl",
        "fastgw",
        "fastgw with jwt (HS256, exp) and acl (one allowed group)",
        jwt_acl_config,
        headers=bearer_headers(bench_jwt()),
        baseline="fastgw",
    ),
    Scenario(
        "fastgw-oidc-repeated",
        "fastgw",
        "fastgw with openid-connect (one RS256 bearer token, repeated) and prometheus",
        oidc_prometheus_config,
        headers=OIDCHeaders(),
        baseline="fastgw-key-auth-prometheus",
    ),
    Scenario(
        "fastgw-oidc-fresh",
        "fastgw",
        f"fastgw with openid-connect (a fresh RS256 token per request, of {FRESH_TOKENS:,}) "
        "and prometheus",
        oidc_prometheus_config,
        headers=OIDCHeaders(),
        wrk_lua=oidc_fresh_tokens_lua,
        baseline="fastgw-key-auth-prometheus",
    ),
    Scenario(
        "fastgw-tls-key-auth-prometheus",
        "fastgw",
        "fastgw with key-auth and prometheus over TLS (an nginx on the load core is its "
        "client)",
        tls_key_auth_prometheus_config,
        headers=API_KEY_HEADERS,
        baseline="fastgw-key-auth-prometheus",
        tls_client=True,
    ),
    Scenario(
        "fastgw-mtls-auth-prometheus",
        "fastgw",
        "fastgw with mtls-auth and prometheus (the same TLS client, presenting a certificate)",
        mtls_auth_prometheus_config,
        baseline="fastgw-tls-key-auth-prometheus",
        tls_client=True,
    ),
    Scenario(
        "fastgw-rate-limit-local",
        "fastgw",
        "fastgw with rate-limiting by ip, policy local",
        rate_limiting_config,
        baseline="fastgw",
    ),
    Scenario(
        "fastgw-rate-limit-redis",
        "fastgw",
        "fastgw with rate-limiting by ip, policy redis (redis-server on the load core)",
        functools.partial(rate_limiting_config, policy="redis"),
        baseline="fastgw",
        needs_redis=True,
    ),
    # The cache key leaves the body out (as Kong's), so every request after the first hits.
    Scenario(
        "fastgw-cache-hit",
        "fastgw",
        "fastgw with proxy-cache (memory), every request a hit",
        proxy_cache_config,
        baseline="fastgw",
    ),
    Scenario(
        "fastgw-ai-proxy-static",
        "fastgw",
        "fastgw with ai-proxy (openai) to the static upstream",
        ai_proxy_config,
        headers=bearer_headers("client-key"),
        baseline="fastgw",
        default=False,
    ),
    # The AI suite: in front of fastgw mock-llm.
    Scenario("mock-direct", "direct", "wrk straight to fastgw mock-llm, no proxy", suite="ai"),
    Scenario("mock-direct-stream", "direct",
             "wrk straight to fastgw mock-llm, each answer streamed as 21 events", suite="ai",
             body=STREAM_BODY, headers={**JSON_HEADERS, **STREAM_PIECES}, default=False),
    *(Scenario(
        f"fastgw-ai-stream-{provider}",
        "fastgw",
        f"fastgw-ai-proxy with each answer streamed as 21 events, {how}",
        config,
        body=STREAM_BODY,
        headers={**API_KEY_HEADERS, **STREAM_PIECES},
        baseline="mock-direct-stream",
        suite="ai",
        default=False,
    ) for provider, how, config in (
        ("openai", "OpenAI to OpenAI", ai_gateway_config),
        ("anthropic", "the client's OpenAI request translated for Anthropic and the "
         "provider's events back", ai_gateway_anthropic_config))),
    Scenario(
        "fastgw-ai-proxy",
        "fastgw",
        "fastgw with ai-proxy (openai), key-auth and prometheus",
        ai_gateway_config,
        headers=API_KEY_HEADERS,
        baseline="litellm",
        suite="ai",
    ),
    Scenario(
        "fastgw-ai-proxy-advanced",
        "fastgw",
        "fastgw with ai-proxy-advanced over 3 targets (round-robin), key-auth and prometheus",
        ai_gateway_advanced_config,
        headers=API_KEY_HEADERS,
        baseline="fastgw-ai-proxy",
        suite="ai",
    ),
    *(Scenario(
        f"fastgw-ai-route-{algorithm}",
        "fastgw",
        f"fastgw with ai-proxy-advanced choosing among 3 priced, tiered and described "
        f"targets by {algorithm}, key-auth and prometheus",
        functools.partial(ai_gateway_routing_config, algorithm=algorithm),
        headers=API_KEY_HEADERS,
        baseline=None if algorithm == "round-robin" else "fastgw-ai-route-round-robin",
        suite="ai",
    ) for algorithm in ("round-robin", "lowest-cost", "complexity", "semantic")),
    Scenario(
        "fastgw-ai-rate-limit-local",
        "fastgw",
        "fastgw-ai-proxy plus ai-rate-limiting-advanced, strategy local",
        functools.partial(ai_gateway_limited_config, strategy="local"),
        headers=API_KEY_HEADERS,
        baseline="fastgw-ai-proxy",
        suite="ai",
    ),
    Scenario(
        "fastgw-ai-rate-limit-redis",
        "fastgw",
        "fastgw-ai-proxy plus ai-rate-limiting-advanced, strategy redis",
        functools.partial(ai_gateway_limited_config, strategy="redis"),
        headers=API_KEY_HEADERS,
        baseline="fastgw-ai-proxy",
        suite="ai",
        needs_redis=True,
    ),
    Scenario(
        "fastgw-ai-cache-hit",
        "fastgw",
        "fastgw-ai-proxy plus ai-semantic-cache (exact layer, memory): every request a hit",
        ai_gateway_cached_config,
        headers=API_KEY_HEADERS,
        baseline="fastgw-ai-proxy",
        suite="ai",
        default=False,
    ),
    Scenario(
        "fastgw-ai-proxy-2k",
        "fastgw",
        "fastgw-ai-proxy on a 2 KB prompt (the prompt plugins' baseline)",
        ai_gateway_prompt_config,
        body=PROMPT_BODY,
        headers=API_KEY_HEADERS,
        suite="ai",
        default=False,
    ),
    *(Scenario(
        f"fastgw-ai-prompt-{plugins}",
        "fastgw",
        f"fastgw-ai-proxy-2k plus {PROMPT_PLUGIN_NAMES[plugins]}",
        functools.partial(ai_gateway_prompt_config, plugins=plugins),
        body=PROMPT_BODY,
        headers=API_KEY_HEADERS,
        baseline="fastgw-ai-proxy-2k",
        suite="ai",
        default=False,
    ) for plugins in PROMPT_PLUGINS),
    Scenario(
        "litellm",
        "litellm",
        f"LiteLLM proxy 1 worker, openai/{CHAT_MODEL} at the mock",
        headers=bearer_headers(LITELLM_MASTER_KEY),
        suite="ai",
        # Its first start after an install compiles a large tree of imports.
        startup_timeout_s=180.0,
    ),
    # The MCP suite (opt-in): tools/call through ai-mcp-proxy against the server called
    # directly, and a REST tool through a conversion route against the REST call itself.
    Scenario("mcp-direct", "direct", "wrk's tools/call straight to the MCP server",
             path="/mcp", body=MCP_ECHO_CALL, headers=MCP_HEADERS, suite="mcp",
             expect=b'"result"', default=False),
    Scenario("fastgw-mcp-passthrough", "fastgw",
             "fastgw, ai-mcp-proxy passthrough-listener (tools/call checked, one tool ACL)",
             mcp_passthrough_config, path="/mcp", body=MCP_ECHO_CALL, headers=MCP_HEADERS,
             baseline="mcp-direct", suite="mcp", expect=b'"result"', default=False),
    Scenario("rest-direct", "direct", "wrk's POST straight to the REST endpoint",
             path="/rest/echo", body=b"{}", suite="mcp", expect=b'"text"', default=False),
    Scenario("fastgw-mcp-conversion", "fastgw",
             "fastgw, ai-mcp-proxy conversion-listener: tools/call made a REST POST",
             mcp_conversion_config, path="/mcp-rest", body=MCP_REST_CALL, headers=MCP_HEADERS,
             baseline="rest-direct", suite="mcp", expect=b'"result"', default=False),
]


@dataclass(frozen=True)
class Comparison:
    """A figure printed under the tables: a row's median against another row's (``row /
    versus``, or ``row - versus`` in ms when ``added``), with the issue's bar if it has one."""

    row: str
    versus: str
    metric: str  # a Measurement field
    added: bool = False
    latency_run: bool = False  # at c=1 only; else at every connection count above 1
    bar: float | None = None
    bar_test: str = ">="  # a key of BAR_TESTS
    issue: int | None = None


BAR_TESTS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}
METRIC_LABELS = {"rps": "RPS", "rps_per_core": "RPS/core", "p50_ms": "p50", "p99_ms": "p99",
                 "us_per_request": "CPU/req"}
LATENCY_CONNECTIONS = 1


def throughput_bars(row: str, versus: str, bar: float, bar_test: str = ">=",
                    issue: int | None = None) -> list[Comparison]:
    # RPS/core first: on a shared machine it moves far less than raw RPS.
    return [Comparison(row, versus, metric, bar=bar, bar_test=bar_test, issue=issue)
            for metric in ("rps_per_core", "rps")]


COMPARISONS: list[Comparison] = [
    *throughput_bars("fastgw-key-auth-prometheus", "fastgw", 0.7, issue=3),
    *throughput_bars("fastgw-rate-limit-local", "fastgw", 0.85, issue=5),
    *throughput_bars("fastgw-oidc-repeated", "fastgw-key-auth-prometheus", 0.8, issue=22),
    *throughput_bars("fastgw-oidc-fresh", "fastgw-key-auth-prometheus", 0.3, issue=22),
    # Over TLS both: the certificate against the key; and against key-auth in plain HTTP.
    Comparison("fastgw-mtls-auth-prometheus", "fastgw-tls-key-auth-prometheus", "rps_per_core"),
    Comparison("fastgw-mtls-auth-prometheus", "fastgw-key-auth-prometheus", "rps_per_core"),
    *throughput_bars("fastgw-key-auth-rate-limit-prometheus", "fastgw", 0.8, issue=10),
    *throughput_bars("fastgw-cache-hit", "fastgw", 1.0, ">", issue=5),
    *throughput_bars("fastgw-ai-proxy", "litellm", 50.0, issue=6),
    Comparison("fastgw-ai-proxy", "mock-direct", "p50_ms", added=True, latency_run=True,
               bar=1.0, bar_test="<", issue=6),
    Comparison("fastgw-ai-proxy", "mock-direct", "p99_ms", added=True, latency_run=True),
    *throughput_bars("fastgw-ai-proxy-advanced", "fastgw-ai-proxy", 0.9, issue=11),
    # Events per second through the gateway against reading the mock's stream directly
    # (every answer has the same events: the RPS ratio is the events' ratio).
    *(Comparison(row, "mock-direct-stream", "rps", bar=0.8, issue=17)
      for row in ("fastgw-ai-stream-openai", "fastgw-ai-stream-anthropic")),
    # A routing decision's CPU per request beyond round-robin's (issue 24).
    *(Comparison(f"fastgw-ai-route-{algorithm}", "fastgw-ai-route-round-robin",
                 "us_per_request", added=True, bar=bar, bar_test="<=", issue=24)
      for algorithm, bar in (("lowest-cost", 20.0), ("complexity", 20.0), ("semantic", 200.0))),
    *throughput_bars("fastgw-ai-rate-limit-local", "fastgw-ai-proxy", 0.85, issue=12),
    *throughput_bars("fastgw-ai-rate-limit-redis", "fastgw-ai-proxy", 0.6, issue=12),
    *throughput_bars("fastgw-ai-prompt-sanitizer", "fastgw-ai-proxy-2k", 0.8, issue=13),
    *throughput_bars("fastgw-ai-prompt-all", "fastgw-ai-proxy-2k", 0.7, issue=13),
    # An exact hit answers at least as fast as the model it stands for.
    Comparison("fastgw-ai-cache-hit", "mock-direct", "p50_ms", added=True, latency_run=True,
               bar=0.0, bar_test="<=", issue=14),
    Comparison("fastgw-ai-cache-hit", "fastgw-ai-proxy", "rps_per_core"),
    # The MCP server (Python) is the limit: the gateway must not be.
    Comparison("fastgw-mcp-passthrough", "mcp-direct", "rps", bar=0.8, issue=23),
    Comparison("fastgw-mcp-conversion", "rest-direct", "rps", bar=0.8, issue=23),
    *(Comparison(row, direct, "p50_ms", added=True, latency_run=True, bar=0.3,
                 bar_test="<=", issue=23)
      for row, direct in (("fastgw-mcp-passthrough", "mcp-direct"),
                          ("fastgw-mcp-conversion", "rest-direct"))),
]


# --------------------------------------------------------------------------- processes


class StartupError(RuntimeError):
    """A server did not come up: ``reason`` says why, ``log`` quotes the end of its logs."""

    def __init__(self, reason: str, log: str = "") -> None:
        super().__init__(reason + (f"\n{log}" if log else ""))
        self.reason = reason
        self.log = log

    def summary(self) -> str:
        """One line for the table: the reason and the log's last line."""
        last_line = self.log.strip().splitlines()[-1][:120] if self.log.strip() else ""
        return f"{self.reason} ({last_line})" if last_line else self.reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    extra_ports: tuple[int, ...] = ()  # further listeners of the same server
    # Servers that stand in front of this one for the row (its TLS client), stopped with it.
    companions: tuple[Server, ...] = ()

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)

    @classmethod
    def spawn(cls, name: str, command: list[str], port: int, workdir: Path, **popen) -> Server:
        log_path = workdir / f"{name}.log"
        with log_path.open("wb") as log:
            # Its own session, so a terminal's Ctrl-C reaches only us and we stop the group.
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        return cls(name, process, port, log_path)

    def stop(self) -> None:
        for companion in self.companions:
            companion.stop()
        stop_process_group(self.process)

    def failure(self, reason: str, extra_log: Path | None = None) -> StartupError:
        logs = "\n".join(filter(None, (tail(self.log_path), extra_log and tail(extra_log))))
        return StartupError(f"{self.name}: {reason}", logs)


def stop_process_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    # SIGKILL the group even after the leader exited: forked workers may outlive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)


def probe(port: int, scenario: Scenario) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", scenario.path, body=scenario.body, headers=dict(scenario.headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_ready(server: Server, check: Callable[[], str | None], state: str,
                     timeout_s: float = STARTUP_TIMEOUT_S, extra_log: Path | None = None) -> None:
    """Poll ``check`` (None once the server is ready, else what it saw) for ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise server.failure(f"exited with code {server.process.returncode}", extra_log)
        try:
            problem = check()
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None:
            return
        last = problem
        time.sleep(0.2)
    raise server.failure(f"not {state} after {timeout_s:.0f} s ({last})", extra_log)


def wait_until_serving(server: Server, scenario: Scenario, extra_log: Path | None = None) -> None:
    """Poll with the scenario's own request until it gets a chat completion back."""

    def chat_completion_problem() -> str | None:
        status, body = probe(server.port, scenario)
        if status == 200 and scenario.expect in body:
            return None
        return f"HTTP {status}: {body[:200]!r}"

    wait_until_ready(server, chat_completion_problem, f"serving {scenario.path}",
                     scenario.startup_timeout_s, extra_log)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """utime+stime (and reaped children's) of ``root_pid`` and every live descendant."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, cpu ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue  # exited while we listed
        # Fields after the ")" that closes comm; comm itself may contain spaces.
        fields = raw[raw.rindex(b")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        stats[int(entry)] = (ppid, utime + stime + cutime + cstime)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    ticks, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        if pid in stats:
            ticks += stats[pid][1]
            pending.extend(children.get(pid, ()))
    return ticks / CLOCK_TICKS_PER_S


# --------------------------------------------------------------------------- nginx


def find_tool(name: str, package: str) -> str:
    """Path of ``name``; installs the Debian ``package`` with apt-get when it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{name} is missing: install the Debian package {package!r}")
    print(f"installing {package} with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        sys.exit(f"{package} installed but {name} is still not on PATH")
    return found


def nginx_config(name: str, workdir: Path, server_block: str, http_extra: str = "") -> str:
    """A whole nginx.conf whose pid, logs and temp files all stay inside ``workdir``."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {workdir}/{name}-{kind}-temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # wrk's and the proxies' connections should live for the whole run; the default (1000)
    # would add a reconnect every 1000 requests to every contender alike.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
{temp_paths}
{http_extra}
    server {{
{server_block}
    }}
}}
"""


def start_nginx(name: str, conf: str, port: int, workdir: Path, cpu: int | None) -> Server:
    conf_path = workdir / f"{name}.conf"
    conf_path.write_text(conf)
    nginx = find_tool("nginx", "nginx")
    # -e: without it nginx opens the packaged error log before it reads our config.
    command = [nginx, "-p", str(workdir), "-e", str(workdir / f"{name}-error.log"),
               "-c", str(conf_path), "-g", "daemon off;"]
    return Server.spawn(name, pinned(command, cpu), port, workdir)


# The static upstream listens on this many ports: the targets of multi-target rows.
STATIC_UPSTREAM_LISTENERS = 3


def start_static_upstream(workdir: Path, cpu: int | None) -> Server:
    text = CHAT_RESPONSE.decode()
    # The answer sits inside an nginx single-quoted string, where these would be special.
    assert not set(text) & set("'$\\"), "canned answer must not need nginx escaping"
    ports = [free_port() for _ in range(STATIC_UPSTREAM_LISTENERS)]
    listens = "\n".join(f"        listen 127.0.0.1:{port};" for port in ports)
    server_block = f"""\
{listens}
        location = {CHAT_PATH} {{
            default_type application/json;
            return 200 '{text}';
        }}"""
    conf = nginx_config("static-upstream", workdir, server_block)
    server = start_nginx("static-upstream", conf, ports[0], workdir, cpu)
    server.extra_ports = tuple(ports[1:])
    return server



# The probe of an upstream: only its path, body and headers matter.
UPSTREAM_PROBE = Scenario("upstream-probe", "direct", "probe")


def ready_or_stopped(server: Server, wait: Callable[[Server], None]) -> Server:
    """``server`` once ``wait`` returns; stopped if it raises, so nothing is left behind."""
    try:
        wait(server)
    except StartupError:
        server.stop()
        raise
    return server


def serving_static_upstream(workdir: Path, args: argparse.Namespace) -> Server:
    error_log = workdir / "static-upstream-error.log"
    return ready_or_stopped(start_static_upstream(workdir, args.load_cpu),
                            lambda upstream: wait_until_serving(upstream, UPSTREAM_PROBE, error_log))


def serving_mock_llm(workdir: Path, args: argparse.Namespace) -> Server:
    """``fastgw mock-llm`` with no added latency, pinned to the load core."""
    port = free_port()
    command = [sys.executable, "-m", "fastgw", "mock-llm", "--port", str(port)]
    mock = Server.spawn("mock-llm", pinned(command, args.load_cpu), port, workdir,
                        cwd=REPO_ROOT, env=fastgw_env())
    return ready_or_stopped(mock, lambda server: wait_until_serving(server, UPSTREAM_PROBE))


MCP_UPSTREAM_PROBE = Scenario("upstream-probe", "direct", "probe", path="/mcp",
                              body=MCP_ECHO_CALL, headers=MCP_HEADERS, expect=b'"result"')


def serving_mcp_upstream(workdir: Path, args: argparse.Namespace) -> Server:
    """bench/mcp_upstream.py (the mcp SDK's MCPServer under uvicorn), pinned to the
    load core."""
    port = free_port()
    command = [sys.executable, str(REPO_ROOT / "bench" / "mcp_upstream.py"), str(port)]
    server = Server.spawn("mcp-upstream", pinned(command, args.load_cpu), port, workdir,
                          cwd=REPO_ROOT, env=fastgw_env())
    return ready_or_stopped(server, lambda up: wait_until_serving(up, MCP_UPSTREAM_PROBE))


def serving_redis(workdir: Path, args: argparse.Namespace) -> Server:
    """A throwaway redis-server (nothing persisted), pinned to the load core."""
    port = free_port()
    command = [find_tool("redis-server", "redis-server"), "--port", str(port),
               "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(workdir), "--daemonize", "no"]
    redis = Server.spawn("redis", pinned(command, args.load_cpu), port, workdir)

    def ping_problem() -> str | None:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        return None if reply.startswith(b"+PONG") else f"PING answered {reply[:60]!r}"

    return ready_or_stopped(redis, lambda server: wait_until_ready(server, ping_problem, "answering PING"))


@dataclass(frozen=True)
class Backends:
    """The servers a suite's rows stand in front of."""

    upstream: Server
    redis: Server | None = None

    def targets(self, count: int = 1) -> Targets:
        ports = self.upstream.ports[:count]
        return Targets(tuple(f"http://127.0.0.1:{port}" for port in ports),
                       self.redis.port if self.redis else None)


def kept_alive_proxy(name: str, workdir: Path, port: int, target_port: int,
                     args: argparse.Namespace, scheme: str = "http", location: str = "") -> str:
    """An nginx.conf proxying 127.0.0.1:``port`` to ``target_port`` over kept-alive
    connections (``location``: more directives for the proxied location)."""
    upstream = f"""\
    upstream target {{
        server 127.0.0.1:{target_port};
        keepalive {args.nginx_keepalive};
        keepalive_requests 1000000;
    }}"""
    server_block = f"""\
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {scheme}://target;
            proxy_http_version 1.1;
            proxy_set_header Connection "";{location}
        }}"""
    return nginx_config(name, workdir, server_block, http_extra=upstream)


def launch_nginx_proxy(scenario: Scenario, backends: Backends, workdir: Path,
                       args: argparse.Namespace) -> Server:
    port = free_port()
    conf = kept_alive_proxy(scenario.name, workdir, port, backends.upstream.port, args)
    return start_nginx(scenario.name, conf, port, workdir, args.proxy_cpu)


def launch_fastgw(scenario: Scenario, backends: Backends, workdir: Path,
                  args: argparse.Namespace) -> Server:
    if scenario.gateway_config is None:
        raise StartupError(f"{scenario.name}: a fastgw row needs a gateway_config")
    if scenario.upstream_targets > len(backends.upstream.ports):
        raise StartupError(f"{scenario.name}: needs {scenario.upstream_targets} upstream "
                           f"listeners, {backends.upstream.name} has {len(backends.upstream.ports)}")
    config_path = workdir / f"{scenario.name}.yaml"
    config = scenario.gateway_config(backends.targets(scenario.upstream_targets))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port, admin_port = free_port(), free_port()
    command = [sys.executable, "-m", "fastgw", "run", "-c", str(config_path), "--workers", "1",
               "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}"]
    gateway = Server.spawn(scenario.name, pinned(command, args.proxy_cpu), port, workdir,
                           cwd=REPO_ROOT, env=fastgw_env())
    if not scenario.tls_client:
        return gateway
    try:
        front = start_tls_client(scenario, port, workdir, args)
    except BaseException:
        gateway.stop()
        raise
    # wrk talks to the front; the gateway's CPU is what is counted.
    return Server(gateway.name, gateway.process, front.port, gateway.log_path,
                  companions=(front,))


def start_tls_client(scenario: Scenario, gateway_port: int, workdir: Path,
                     args: argparse.Namespace) -> Server:
    """An nginx on the load core: plain HTTP in, TLS with the bench's client
    certificate out to the gateway, connections kept alive."""
    pki = bench_pki()
    port = free_port()
    name = f"{scenario.name}-tls-client"
    conf = kept_alive_proxy(name, workdir, port, gateway_port, args, "https", f"""
            proxy_ssl_server_name on;
            proxy_ssl_name {TLS_SERVER_NAME};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {pki["ca"].path};
            proxy_ssl_certificate {pki["client"][0]};
            proxy_ssl_certificate_key {pki["client"][1]};
            proxy_ssl_session_reuse on;""")
    return start_nginx(name, conf, port, workdir, args.load_cpu)


def fastgw_env() -> dict[str, str]:
    # The checkout's sources (and any in-place compiled core) win over an installed copy.
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path}


def launch_direct(scenario: Scenario, backends: Backends, workdir: Path,
                  args: argparse.Namespace) -> Server:
    """No proxy: wrk talks to the suite's upstream itself, and its CPU is what is counted."""
    return backends.upstream


# --------------------------------------------------------------------------- LiteLLM

# Its own virtualenv, so its many pins never meet the project's; bench/.cache keeps itself
# out of git. The version is pinned to one measured here; change it to measure another.
LITELLM_REQUIREMENT = "litellm[proxy]==1.108.7"
BENCH_CACHE = REPO_ROOT / "bench" / ".cache"
LITELLM_VENV = BENCH_CACHE / "litellm-venv"
LITELLM_INSTALL_TIMEOUT_S = 1800


def litellm_executable() -> Path:
    """``litellm`` of bench/.cache/litellm-venv, installed there first if it is missing or
    was installed from another requirement."""
    executable = LITELLM_VENV / "bin" / "litellm"
    installed_marker = LITELLM_VENV / "bench-requirement.txt"
    with contextlib.suppress(OSError):
        if executable.exists() and installed_marker.read_text() == LITELLM_REQUIREMENT:
            return executable
    BENCH_CACHE.mkdir(parents=True, exist_ok=True)
    (BENCH_CACHE / ".gitignore").write_text("# written by bench/run.py\n*\n")
    log_path = BENCH_CACHE / "litellm-install.log"
    print(f"installing {LITELLM_REQUIREMENT} into {LITELLM_VENV} (once; a few minutes), "
          f"log: {log_path}", file=sys.stderr)
    steps = ([sys.executable, "-m", "venv", "--clear", str(LITELLM_VENV)],
             [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", LITELLM_REQUIREMENT])
    with log_path.open("wb") as log:
        for step in steps:
            try:
                subprocess.run(step, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               check=True, timeout=LITELLM_INSTALL_TIMEOUT_S)
            except (OSError, subprocess.SubprocessError) as exc:
                reason = f"litellm: `{' '.join(step[-3:])}` failed, see {log_path}"
                raise StartupError(reason, tail(log_path)) from exc
    if not executable.exists():
        raise StartupError(f"litellm: installed, but {executable} is missing", tail(log_path))
    installed_marker.write_text(LITELLM_REQUIREMENT)
    return executable


def litellm_config(mock_port: int) -> dict:
    return {
        "model_list": [
            {
                "model_name": CHAT_MODEL,
                "litellm_params": {
                    "model": f"openai/{CHAT_MODEL}",
                    "api_base": f"http://127.0.0.1:{mock_port}/v1",
                    "api_key": PROVIDER_KEY,
                },
            }
        ],
        "general_settings": {"master_key": LITELLM_MASTER_KEY},
    }


def launch_litellm(scenario: Scenario, backends: Backends, workdir: Path,
                   args: argparse.Namespace) -> Server:
    executable = litellm_executable()
    config_path = workdir / f"{scenario.name}.yaml"
    config_path.write_text(yaml.safe_dump(litellm_config(backends.upstream.port), sort_keys=False))
    port = free_port()
    command = [str(executable), "--config", str(config_path), "--host", "127.0.0.1",
               "--port", str(port), "--num_workers", "1"]
    # The bundled cost map, rather than a download at start.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return Server.spawn(scenario.name, pinned(command, args.proxy_cpu), port, workdir,
                        cwd=workdir, env=env)


# --------------------------------------------------------------------------- suites


# A launcher starts the server for a row, pinned to args.proxy_cpu.
LAUNCHERS: dict[str, Callable[[Scenario, Backends, Path, argparse.Namespace], Server]] = {
    "nginx": launch_nginx_proxy,
    "fastgw": launch_fastgw,
    "direct": launch_direct,
    "litellm": launch_litellm,
}


@dataclass(frozen=True)
class Suite:
    """Rows that stand in front of the same upstream, measured together."""

    title: str
    start_upstream: Callable[[Path, argparse.Namespace], Server]
    connections_option: str  # the attribute of the parsed arguments with its connection counts


SUITES: dict[str, Suite] = {
    "proxy": Suite("proxy suite: upstream = nginx static answer", serving_static_upstream,
                   "connections"),
    "ai": Suite("AI suite: upstream = fastgw mock-llm", serving_mock_llm, "ai_connections"),
    "mcp": Suite("MCP suite: upstream = the mcp SDK's MCPServer (stateless, JSON) and a REST "
                 "endpoint beside it", serving_mcp_upstream, "mcp_connections"),
}


# --------------------------------------------------------------------------- wrk


_TIME_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS_S[match[2]]


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors


def parse_wrk_output(text: str) -> WrkResult:
    """Read totals and the 50%/99% latency lines printed by ``wrk --latency``."""
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    p50 = re.search(r"^\s*50%\s+([\d.]+\w+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+\w+)", text, re.M)
    if not (totals and rps and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{text}")
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text):
        errors += int(non_2xx[1])
    if socket_errors := re.search(r"Socket errors:(.*)$", text, re.M):
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return WrkResult(
        requests=int(totals[1]),
        duration_s=parse_duration_s(totals[2]),
        rps=float(rps[1]),
        p50_ms=parse_duration_s(p50[1]) * 1e3,
        p99_ms=parse_duration_s(p99[1]) * 1e3,
        errors=errors,
    )


def write_wrk_script(scenario: Scenario, workdir: Path) -> Path:
    """A lua script that makes wrk send the scenario's POST on every request."""
    body_path = workdir / f"{scenario.name}-body.json"
    body_path.write_bytes(scenario.body)
    # Lua string escapes via %q keep header values safe whatever they contain.
    header_lines = "\n".join(
        f'wrk.headers[{lua_string(key)}] = {lua_string(value)}' for key, value in scenario.headers.items()
    )
    script = f"""\
-- generated by bench/run.py; only static fields, so wrk builds the request once
wrk.method = "POST"
local body_file = assert(io.open({lua_string(str(body_path))}, "rb"))
wrk.body = body_file:read("*a")
body_file:close()
{header_lines}
"""
    if scenario.path != CHAT_PATH:
        # The URL wrk is given names the chat path; this row asks for its own.
        script += f"wrk.path = {lua_string(scenario.path)}\n"
    if scenario.wrk_lua is not None:
        script += scenario.wrk_lua(workdir)
    script_path = workdir / f"{scenario.name}.lua"
    script_path.write_text(script)
    return script_path


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def run_wrk(url: str, script: Path, connections: int, threads: int, duration_s: int,
            cpu: int | None) -> WrkResult:
    wrk = find_tool("wrk", "wrk")
    # wrk's default 2 s timeout counts LiteLLM's slowest answers (p99 above 1 s
    # at 64 connections) as socket errors; 10 s lets them be measured.
    command = pinned([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s",
                      "--timeout", "10s", "--latency", "-s", str(script), url], cpu)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=duration_s + 30)
    finally:
        stop_process_group(process)
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{text}")
    return parse_wrk_output(text)


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_cores: float  # proxy CPU seconds per wall second
    rps_per_core: float  # requests per proxy CPU second
    requests: int
    errors: int
    wall_s: float

    @property
    def us_per_request(self) -> float:
        """Microseconds of the proxy's CPU per request."""
        return 1e6 / self.rps_per_core if self.rps_per_core else 0.0


def measure(server: Server, script: Path, connections: int, args: argparse.Namespace) -> Measurement:
    url = f"http://127.0.0.1:{server.port}{CHAT_PATH}"
    threads = min(args.threads, connections)  # wrk wants a connection per thread
    if args.warmup > 0:
        run_wrk(url, script, connections, threads, args.warmup, args.load_cpu)
    cpu_before, wall_before = process_tree_cpu_seconds(server.process.pid), time.monotonic()
    result = run_wrk(url, script, connections, threads, args.duration, args.load_cpu)
    cpu_s = process_tree_cpu_seconds(server.process.pid) - cpu_before
    wall_s = time.monotonic() - wall_before
    if result.errors > MAX_ERROR_SHARE * max(result.requests, 1):
        raise RuntimeError(f"{result.errors} failed requests out of {result.requests}")
    cpu_cores = cpu_s / wall_s
    return Measurement(
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_cores=cpu_cores,
        # = RPS / (cpu_s / wall_s) with wrk's own clock; a zero reading means under one tick.
        rps_per_core=result.requests / cpu_s if cpu_s > 0 else float("nan"),
        requests=result.requests,
        errors=result.errors,
        wall_s=wall_s,
    )


@dataclass
class Row:
    scenario: str
    connections: int
    baseline: str | None
    suite: str
    runs: list[Measurement] = field(default_factory=list)
    error: str | None = None

    def median(self, metric: str) -> float | None:
        values = [getattr(run, metric) for run in self.runs]
        return statistics.median(values) if values and not self.error else None


RATIO_METRICS = ("rps", "rps_per_core", "p50_ms", "p99_ms")


def ratios(row: Row, rows: dict[tuple[str, int], Row]) -> dict[str, float] | None:
    base = rows.get((row.baseline, row.connections)) if row.baseline else None
    if base is None:
        return None
    pairs = {metric: (row.median(metric), base.median(metric)) for metric in RATIO_METRICS}
    if any(mine is None or theirs in (None, 0) for mine, theirs in pairs.values()):
        return None
    return {metric: mine / theirs for metric, (mine, theirs) in pairs.items()}


@contextlib.contextmanager
def running_servers(suite: Suite, scenarios: list[Scenario], workdir: Path,
                    args: argparse.Namespace) -> Iterator[dict[str, Server | StartupError]]:
    """Start the suite's upstream, Redis if a row needs it, and every row's server; stop
    all of them on the way out."""
    with contextlib.ExitStack() as stack:
        upstream = suite.start_upstream(workdir, args)
        stack.callback(upstream.stop)
        redis = None
        if any(s.needs_redis for s in scenarios):
            redis = serving_redis(workdir, args)
            stack.callback(redis.stop)
        backends = Backends(upstream, redis)
        servers: dict[str, Server | StartupError] = {}
        for scenario in scenarios:
            try:
                server = LAUNCHERS[scenario.server](scenario, backends, workdir, args)
                stack.callback(server.stop)
                wait_until_serving(server, scenario, workdir / f"{scenario.name}-error.log")
                servers[scenario.name] = server
            except StartupError as exc:
                servers[scenario.name] = exc
                print(f"FAILED to start {exc}", file=sys.stderr)
        yield servers


def run_benchmark(scenarios: list[Scenario], args: argparse.Namespace) -> list[Row]:
    """Run each suite in turn; within one, alternate its rows (a, b, a, b, ...) at each
    connection count and keep every run."""
    by_suite = {name: [s for s in scenarios if s.suite == name] for name in SUITES}
    plan = {name: getattr(args, SUITES[name].connections_option)
            for name, chosen in by_suite.items() if chosen}
    total = sum(len(by_suite[name]) * len(counts) for name, counts in plan.items()) * args.repeat
    estimate = total * (args.duration + args.warmup + 0.6)
    print(f"{total} runs, about {estimate / 60:.1f} min plus server starts", file=sys.stderr)
    rows: list[Row] = []
    done = 0
    with tempfile.TemporaryDirectory(prefix="fastgw-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx workers drop root and must reach their temp dirs
        for name, counts in plan.items():
            chosen = by_suite[name]
            suite_rows = {(s.name, c): Row(s.name, c, s.baseline, name) for c in counts for s in chosen}
            rows.extend(suite_rows.values())
            scripts = {s.name: write_wrk_script(s, workdir) for s in chosen}
            try:
                with running_servers(SUITES[name], chosen, workdir, args) as servers:
                    for connections in counts:
                        for _ in range(args.repeat):
                            for scenario in chosen:
                                done += 1
                                row = suite_rows[(scenario.name, connections)]
                                label = f"[{done}/{total}] {scenario.name} c={connections}"
                                record_run(row, servers[scenario.name], scripts[scenario.name],
                                           args, label)
            except StartupError as exc:  # the suite's upstream (or Redis): none of its rows can run
                print(f"FAILED to start {exc}", file=sys.stderr)
                for row in suite_rows.values():
                    row.error = f"did not start: {exc.summary()}"
    return rows


def record_run(row: Row, server: Server | StartupError, script: Path, args: argparse.Namespace,
               label: str) -> None:
    """Measure one run into ``row``; a failure marks the row and skips its later runs."""
    if isinstance(server, StartupError):
        row.error = f"did not start: {server.summary()}"
        return
    if row.error:
        return
    try:
        run = measure(server, script, row.connections, args)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        row.error = str(exc).splitlines()[0]
        print(f"{label}: FAILED {exc}", file=sys.stderr)
        return
    row.runs.append(run)
    print(f"{label}: {run.rps:,.0f} rps, p50 {run.p50_ms:.3f} ms, p99 {run.p99_ms:.3f} ms, "
          f"{run.cpu_cores:.2f} cores, {run.rps_per_core:,.0f} rps/core", file=sys.stderr)


# --------------------------------------------------------------------------- report


def format_table(rows: list[Row]) -> str:
    by_key = {(row.scenario, row.connections): row for row in rows}
    header = ("row", "conns", "RPS", "p50 ms", "p99 ms", "cores", "RPS/core", "spread",
              "vs", "RPS x", "RPS/core x", "p50 x", "p99 x")
    lines = [header]
    for row in rows:
        if row.error or not row.runs:
            lines.append((row.scenario, str(row.connections), f"FAILED: {row.error or 'no runs'}"))
            continue
        rps_values = [run.rps for run in row.runs]
        spread = (max(rps_values) - min(rps_values)) / statistics.median(rps_values)
        cells = [row.scenario, str(row.connections), f"{row.median('rps'):,.0f}",
                 f"{row.median('p50_ms'):.3f}", f"{row.median('p99_ms'):.3f}",
                 f"{row.median('cpu_cores'):.2f}", f"{row.median('rps_per_core'):,.0f}",
                 f"{spread:.0%}"]
        row_ratios = ratios(row, by_key)
        if row_ratios:
            cells += [row.baseline or ""] + [f"{row_ratios[m]:.2f}" for m in RATIO_METRICS]
        lines.append(tuple(cells))
    # A failed row's message runs across the measured columns, so it sets only the first two.
    widths = [max(len(line[i]) for line in lines if i < len(line) and (i < 2 or len(line) != 3))
              for i in range(len(header))]

    def render(line: tuple[str, ...]) -> str:
        if len(line) == 3:  # a failed row: its message runs across the columns
            return f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]}"
        return "  ".join(f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
                         for i, (cell, w) in enumerate(zip(line, widths, strict=False)))

    return "\n".join(render(line) for line in lines)


@dataclass
class ComparisonResult:
    comparison: Comparison
    connections: int
    value: float | None  # None: one of the two rows failed
    met: bool | None  # None: no bar, or no value


def evaluate_comparisons(rows: list[Row]) -> list[ComparisonResult]:
    """Each comparison at every connection count where both of its rows were selected."""
    by_key = {(row.scenario, row.connections): row for row in rows}
    results = []
    for comparison in COMPARISONS:
        for (name, connections), row in by_key.items():
            base = by_key.get((comparison.versus, connections))
            at_latency_run = connections == LATENCY_CONNECTIONS
            if name != comparison.row or base is None or at_latency_run != comparison.latency_run:
                continue
            mine, theirs = row.median(comparison.metric), base.median(comparison.metric)
            if mine is None or theirs is None or not (comparison.added or theirs):
                value = None
            else:
                value = mine - theirs if comparison.added else mine / theirs
            met = None
            if value is not None and comparison.bar is not None:
                met = BAR_TESTS[comparison.bar_test](value, comparison.bar)
            results.append(ComparisonResult(comparison, connections, value, met))
    # One pair's lines together, per connection count: its RPS/core line, then its RPS line.
    pair_order = {(c.row, c.versus): i for i, c in reversed(list(enumerate(COMPARISONS)))}
    count_order = {row.connections: i for i, row in reversed(list(enumerate(rows)))}
    results.sort(key=lambda r: (pair_order[r.comparison.row, r.comparison.versus],
                                count_order[r.connections]))
    return results


def format_comparisons(results: list[ComparisonResult]) -> str:
    lines = []
    for result in results:
        comparison = result.comparison
        sign, unit = (" - ", " µs" if comparison.metric == "us_per_request" else " ms") \
            if comparison.added else (" / ", "x")
        pair = f"{comparison.row}{sign}{comparison.versus}"
        label = f"{METRIC_LABELS[comparison.metric]}{' added' if comparison.added else ''}"
        if result.value is None:
            figure = "n/a (a row failed)"
        else:
            figure = f"{result.value:+.3f}{unit}" if comparison.added else f"{result.value:.3f}{unit}"
        line = f"  c={result.connections:<4} {pair:<40} {label:<10} {figure:>10}"
        if comparison.bar is not None:
            verdict = {True: "met", False: "MISSED", None: "-"}[result.met]
            line += f"   bar {comparison.bar_test} {comparison.bar:g}{unit.strip()} " \
                    f"(issue {comparison.issue}): {verdict}"
        lines.append(line)
    return "\n".join(lines)


def format_report(rows: list[Row]) -> str:
    sections = [f"{suite.title}\n{format_table(suite_rows)}"
                for name, suite in SUITES.items()
                if (suite_rows := [row for row in rows if row.suite == name])]
    if results := evaluate_comparisons(rows):
        sections.append("comparisons (RPS/core first: it moves far less than RPS here)\n"
                        + format_comparisons(results))
    return "\n\n".join(sections)


def command_output(command: list[str]) -> str:
    """What a version command prints (nginx -v writes to stderr, wrk exits 1), or the error."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20,
                                cwd=REPO_ROOT, env=fastgw_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: {exc}"
    return (result.stdout + result.stderr).strip()


def report_json(rows: list[Row], args: argparse.Namespace) -> bytes:
    by_key = {(row.scenario, row.connections): row for row in rows}
    servers = {scenario.server for scenario in SCENARIOS for row in rows if row.scenario == scenario.name}
    return orjson.dumps(
        {
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
                "threads": args.threads,
                "nginx_keepalive": args.nginx_keepalive,
                "connections": args.connections,
                "ai_connections": args.ai_connections,
                "mcp_connections": args.mcp_connections,
                "proxy_cpu": args.proxy_cpu,
                "load_cpu": args.load_cpu,
                "body_bytes": len(CHAT_BODY),
                "response_bytes": len(CHAT_RESPONSE),
            },
            "machine": {
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "nginx": command_output([find_tool("nginx", "nginx"), "-v"]),
                "wrk": command_output([find_tool("wrk", "wrk"), "--version"]).splitlines()[0],
                # Says whether the compiled core is loaded: without it fastgw rows mean little.
                "fastgw": command_output([sys.executable, "-m", "fastgw", "version"]),
                "litellm": LITELLM_REQUIREMENT if "litellm" in servers else None,
            },
            "rows": [
                {
                    "scenario": row.scenario,
                    "suite": row.suite,
                    "connections": row.connections,
                    "baseline": row.baseline,
                    "error": row.error,
                    "median": {m: row.median(m) for m in (*RATIO_METRICS, "cpu_cores")},
                    "ratios": ratios(row, by_key),
                    "runs": [asdict(run) for run in row.runs],
                }
                for row in rows
            ],
            "comparisons": [
                {**asdict(result.comparison), "connections": result.connections,
                 "value": result.value, "met": result.met}
                for result in evaluate_comparisons(rows)
            ],
        },
        option=orjson.OPT_INDENT_2,
    )


# --------------------------------------------------------------------------- main


SAMPLE_WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8080/v1/chat/completions
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   850.12us  120.50us   5.10ms   91.00%
    Req/Sec    75.20k     2.10k   78.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%  900.00us
     90%    1.02ms
     99%    1.50ms
  75123 requests in 1.00s, 33.12MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  75100.55
Transfer/sec:     33.10MB
"""


def self_test(args: argparse.Namespace) -> int:
    """Check the parsers, then measure the nginx rows for 1 s: exit 0 when all is sane."""
    parsed = parse_wrk_output(SAMPLE_WRK_OUTPUT)
    expected = WrkResult(requests=75123, duration_s=1.0, rps=75100.55, p50_ms=0.812, p99_ms=1.5, errors=6)
    if parsed != expected:
        print(f"self-test: wrk parser gave {parsed}, expected {expected}", file=sys.stderr)
        return 1
    if len(CHAT_BODY) != 337 or not 250 <= len(CHAT_RESPONSE) <= 350:
        print("self-test: payload sizes drifted", file=sys.stderr)
        return 1
    args.duration, args.warmup, args.repeat, args.connections = 1, 0, 1, [64]
    rows = run_benchmark([s for s in SCENARIOS if s.server == "nginx"], args)
    print(format_report(rows))
    problems = [f"{row.scenario}: {row.error}" for row in rows if row.error]
    for row in rows:
        if not row.error and not (row.median("rps") > 1000 and row.median("cpu_cores") > 0.05):
            problems.append(f"{row.scenario}: implausible figures {row.runs}")
    for problem in problems:
        print(f"self-test: {problem}", file=sys.stderr)
    print("self-test: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


def select_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """--only's rows as named; else the default rows (of the AI suite alone with --ai),
    without LiteLLM under --no-litellm."""
    if not args.only:
        return [s for s in SCENARIOS if s.default and (s.suite == "ai" or not args.ai)
                and not (args.no_litellm and s.server == "litellm")]
    known = {s.name: s for s in SCENARIOS}
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"unknown rows {unknown}; known: {', '.join(known)}")
    return [known[name] for name in names]


def connection_counts(text: str) -> list[int]:
    counts = [int(c) for c in text.split(",") if c.strip()]
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"not a list of connection counts: {text!r}")
    return counts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded load before each run (1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; medians are reported (3)")
    parser.add_argument("--connections", type=connection_counts,
                        help="proxy suite: comma-separated wrk connection counts (64,256; --quick: 64)")
    parser.add_argument("--ai-connections", type=connection_counts, default=[64, LATENCY_CONNECTIONS],
                        help=f"AI suite: wrk connection counts; c={LATENCY_CONNECTIONS} is the "
                             f"latency run (64,{LATENCY_CONNECTIONS})")
    parser.add_argument("--mcp-connections", type=connection_counts,
                        default=[16, LATENCY_CONNECTIONS],
                        help=f"MCP suite: wrk connection counts (16,{LATENCY_CONNECTIONS})")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1, help="wrk threads (1)")
    parser.add_argument("--only", help="comma-separated row names (default: the default rows)")
    parser.add_argument("--ai", action="store_true", help="the AI suite only, LiteLLM included")
    parser.add_argument("--no-litellm", action="store_true",
                        help="leave out the litellm row (and its install); --quick implies it without --ai")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true",
                        help="2 s runs, 1 repeat, no warm-up, proxy suite at 64 connections")
    parser.add_argument("--self-test", action="store_true", help="check the harness on the nginx rows, 1 s")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--nginx-keepalive", type=int, default=512,
                        help="idle upstream connections nginx keeps (512, fastgw's default "
                             "pool size); see bench/README.md")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args(argv)
    if args.quick:
        # A smoke check: does every row start and serve? Well under a minute.
        args.duration, args.repeat, args.warmup = 2, 1, 0
        args.connections = args.connections or [64]
        if not args.ai and not args.no_litellm and not args.only:
            args.no_litellm = True
            print("--quick leaves out the litellm row (install, slow start); --quick --ai "
                  "runs it", file=sys.stderr)
    args.connections = args.connections or [64, 256]
    if args.duration < 1 or args.repeat < 1:
        parser.error("--duration and --repeat must be >= 1")
    # The proxies share core 0; wrk, the upstreams and Redis share core 1.
    allowed = os.sched_getaffinity(0)
    pin = not args.no_pin and {0, 1} <= allowed
    if not args.no_pin and not pin:
        print("warning: cores 0 and 1 are not both available; running unpinned", file=sys.stderr)
    args.proxy_cpu, args.load_cpu = (0, 1) if pin else (None, None)
    return args


def raise_file_limit() -> None:
    # 256 client connections plus upstream ones per proxy outgrow a 1024 soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_on_signal(signum: int, _frame: object) -> None:
    # Raising lets every ``finally`` and ExitStack stop the servers before we go; a second
    # Ctrl-C must not cut that cleanup short and leave servers behind.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            marker = "default" if s.default else "opt-in"
            print(f"{s.name:<28} {s.suite:<6} {marker:<8} vs {s.baseline or '-':<8} {s.description}")
        return 0
    # SIGINT too: a shell that starts us in the background would otherwise leave it ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, exit_on_signal)
    raise_file_limit()
    find_tool("nginx", "nginx")
    find_tool("wrk", "wrk")
    if args.self_test:
        return self_test(args)
    rows = run_benchmark(select_scenarios(args), args)
    print(format_report(rows))
    if args.json:
        args.json.write_bytes(report_json(rows, args))
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
