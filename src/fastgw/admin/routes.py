"""Admin API endpoints (PRODUCT.md section 4)."""

from __future__ import annotations

import hmac
import ipaddress
import re

import orjson
import yaml

from fastgw.admin.messages import AdminRequest, AdminResponse
from fastgw.config.checks import listen_address

UPSTREAM_HEALTH = re.compile(r"^/upstreams/([^/]+)/health/?$")
CACHE_ENTRY = re.compile(r"^/proxy-cache/([^/]+)$")
AI_BUDGETS = re.compile(r"^/ai/budgets(?:/([^/]+))?$")


# What the status API (``_gateway.status_listen``) serves: reads only.
STATUS_PATHS = frozenset({"/status", "/status/ready", "/metrics"})


class AdminApp:
    """The admin API; with ``status_only``, Kong's status API: GET /status,
    /status/ready and /metrics without a token, for probes and scrapers on
    an address the admin API (which can change the config) does not use."""

    def __init__(self, supervisor, status_only: bool = False):
        self.sup = supervisor
        self.status_only = status_only

    async def handle(self, req: AdminRequest) -> AdminResponse:
        path = req.path.rstrip("/") or "/"
        if self.status_only:
            if path not in STATUS_PATHS:
                return AdminResponse(404, {"message": "Not found"})
            if req.method != "GET":
                return method_not_allowed()
        else:
            refusal = refuse_request(req, self.sup.admin_listen,
                                     self.sup.config.gateway.admin_token)
            if refusal is not None:
                return refusal
        if path == "/status":
            if req.method != "GET":
                return method_not_allowed()
            return AdminResponse(200, await self.sup.status())
        if path == "/status/ready":
            if req.method != "GET":
                return method_not_allowed()
            # Kong's readiness: every worker up with the config.
            ready = self.sup.ready()
            return AdminResponse(200 if ready else 503,
                                 {"message": "ready" if ready else "not ready"})
        if path == "/config":
            if req.method == "GET":
                from fastgw.config.loader import redacted_document

                return AdminResponse(200, redacted_document(self.sup.config))
            if req.method == "POST":
                return await self.post_config(req)
            return method_not_allowed()
        if path in ("/config/check", "/config/revert"):
            if req.method != "POST":
                return method_not_allowed()
            if path == "/config/check":
                return await self.check_config(req)
            return await self.revert_config(req)
        if path == "/metrics":
            if req.method != "GET":
                return method_not_allowed()
            from fastgw.admin.metrics import render_metrics

            body = render_metrics(await self.sup.worker_stats(metrics=True),
                                  await self.sup.ai_budgets())
            return AdminResponse(200, body, "text/plain; version=0.0.4; charset=utf-8")
        if path == "/proxy-cache" or CACHE_ENTRY.match(path):
            if req.method != "DELETE":
                return method_not_allowed()
            m = CACHE_ENTRY.match(path)
            key = m.group(1) if m else None
            removed = await self.sup.purge_cache(key)
            if key is not None and removed == 0:
                return AdminResponse(404, {"message": "Not found"})
            return AdminResponse(204, b"")
        m = AI_BUDGETS.match(path)
        if m:
            if req.method != "GET":
                return method_not_allowed()
            budgets = await self.sup.ai_budgets(m.group(1))
            if budgets is None:
                return AdminResponse(404, {"message": "Not found"})
            return AdminResponse(200, {"data": budgets})
        m = UPSTREAM_HEALTH.match(path)
        if m:
            if req.method != "GET":
                return method_not_allowed()
            return await self.upstream_health(m.group(1))
        return AdminResponse(404, {"message": "Not found"})

    async def post_config(self, req: AdminRequest) -> AdminResponse:
        doc = request_document(req)
        if isinstance(doc, AdminResponse):
            return doc
        ok, errors = await self.sup.swap(doc)
        if not ok:
            return AdminResponse(400, {"message": "declarative config is invalid",
                                       "errors": errors})
        return AdminResponse(201, {"message": "config swapped", "hash": self.sup.config.hash,
                                   "stall_ms": self.sup.last_swap_stall_ms})

    async def check_config(self, req: AdminRequest) -> AdminResponse:
        """Validate a document as POST /config would, without applying it."""
        doc = request_document(req)
        if isinstance(doc, AdminResponse):
            return doc
        config, errors = self.sup.check(doc)
        if config is None:
            return AdminResponse(400, {"message": "declarative config is invalid",
                                       "errors": errors})
        return AdminResponse(200, {"message": "config valid", "hash": config.hash})

    async def revert_config(self, req: AdminRequest) -> AdminResponse:
        """Back to the config before the last swap, when the running one has
        the hash the body names: ``{"hash": "..."}``."""
        try:
            body = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("hash"), str):
            return AdminResponse(400, {"message": "expected {\"hash\": \"<running hash>\"}"})
        ok, errors = await self.sup.revert(body["hash"])
        if not ok:
            return AdminResponse(409, {"message": "config not reverted", "errors": errors})
        return AdminResponse(201, {"message": "config reverted", "hash": self.sup.config.hash})
    async def upstream_health(self, name: str) -> AdminResponse:
        """Kong's target list with health; a target is as unhealthy as the
        worst worker sees it, and each worker's own view is listed too."""
        from fastgw.upstreams.report import merge_upstream

        upstream = self.sup.config.upstream(name)
        if upstream is None:
            return AdminResponse(404, {"message": "Not found"})
        targets = merge_upstream(name, await self.sup.worker_health(name))
        if targets is None:
            return AdminResponse(503, {"message": "no worker answered"})
        data = [{**target, "upstream": {"name": name}} for target in targets]
        return AdminResponse(200, {"data": data, "total": len(data)})


def request_document(req: AdminRequest) -> dict | AdminResponse:
    """The declarative document of a request's body (JSON, or YAML by its
    Content-Type), or the 400 answer saying why there is none."""
    from fastgw.config.loader import ConfigError, decode_yaml

    ctype = req.headers.get("content-type", "")
    try:
        doc = decode_yaml(req.body) if "yaml" in ctype else orjson.loads(req.body)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        return AdminResponse(400, {"message": "invalid config document",
                                   "errors": [f"body: {exc}"]})
    except ConfigError as exc:
        return AdminResponse(400, {"message": "invalid config document",
                                   "errors": [f"body: {error}" for error in exc.errors]})
    if not isinstance(doc, dict):
        return AdminResponse(400, {"message": "invalid config document",
                                   "errors": ["body: expected an object"]})
    return doc


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRITE_CONTENT_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")


def refuse_request(req: AdminRequest, listen: str | None, token: str | None) -> AdminResponse | None:
    """The answer for a request the admin API must not serve, else None.

    With a token, every request carries it (Kong-Admin-Token, or as a bearer token). A write must
    also be one a web page cannot make a browser send: a JSON or YAML body
    (a form or text/plain post is not), a Host that names this listener (DNS
    rebinding sends the attacker's name) and no Origin but this listener's."""
    if token is not None and not hmac.compare_digest(sent_token(req).encode(), token.encode()):
        return AdminResponse(401, {"message": "Invalid credentials. Token or User credentials required"})
    if req.method not in WRITE_METHODS:
        return None
    host = req.headers.get("host", "")
    if not host_names_listener(host, listen):
        return AdminResponse(403, {"message": f"Host '{host}' does not name the admin listener"})
    origin = req.headers.get("origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return AdminResponse(403, {"message": f"cross-origin write refused (Origin '{origin}')"})
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if req.body and ctype not in WRITE_CONTENT_TYPES:
        return AdminResponse(415, {"message": "a write needs Content-Type application/json "
                                              "or application/yaml"})
    return None


def sent_token(req: AdminRequest) -> str:
    """The admin token a request carries: Kong's ``Kong-Admin-Token``, or a
    bearer token (what Prometheus's scrape configs can send)."""
    token = req.headers.get("kong-admin-token")
    if token is not None:
        return token
    scheme, _, credentials = req.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def host_names_listener(host: str, listen: str | None) -> bool:
    """True if a Host header names the admin listener: its port, and an IP
    literal, localhost or the listener's own host name."""
    name, sep, port = host.rpartition(":")
    if not sep or not port.isdigit() or listen is None:
        return False
    listen_host, listen_port = listen_address(listen, 8001)
    if int(port) != listen_port:
        return False
    name = name.strip("[]").lower()
    if name in ("localhost", listen_host.lower()):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def method_not_allowed() -> AdminResponse:
    return AdminResponse(405, {"message": "Method not allowed"})
