"""Admin API endpoints (PRODUCT.md section 4)."""

from __future__ import annotations

import re

import orjson
import yaml

from fastgw.admin.server import AdminRequest, AdminResponse

UPSTREAM_HEALTH = re.compile(r"^/upstreams/([^/]+)/health/?$")
CACHE_ENTRY = re.compile(r"^/proxy-cache/([^/]+)$")


class AdminApp:
    def __init__(self, supervisor):
        self.sup = supervisor

    async def handle(self, req: AdminRequest) -> AdminResponse:
        path = req.path.rstrip("/") or "/"
        if path == "/status":
            if req.method != "GET":
                return method_not_allowed()
            return AdminResponse(200, await self.sup.status())
        if path == "/config":
            if req.method == "GET":
                from fastgw.config.loader import redacted_document

                return AdminResponse(200, redacted_document(self.sup.config))
            if req.method == "POST":
                return await self.post_config(req)
            return method_not_allowed()
        if path == "/metrics":
            if req.method != "GET":
                return method_not_allowed()
            from fastgw.admin.metrics import render_metrics

            body = render_metrics(await self.sup.worker_stats(metrics=True))
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
        m = UPSTREAM_HEALTH.match(path)
        if m:
            if req.method != "GET":
                return method_not_allowed()
            return await self.upstream_health(m.group(1))
        return AdminResponse(404, {"message": "Not found"})

    async def post_config(self, req: AdminRequest) -> AdminResponse:
        ctype = req.headers.get("content-type", "")
        try:
            if "yaml" in ctype:
                doc = yaml.safe_load(req.body)
            else:
                doc = orjson.loads(req.body)
        except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
            return AdminResponse(400, {"message": "invalid config document",
                                       "errors": [f"body: {exc}"]})
        if not isinstance(doc, dict):
            return AdminResponse(400, {"message": "invalid config document",
                                       "errors": ["body: expected an object"]})
        ok, errors = await self.sup.swap(doc)
        if not ok:
            return AdminResponse(400, {"message": "declarative config is invalid",
                                       "errors": errors})
        return AdminResponse(201, {"message": "config swapped", "hash": self.sup.config.hash})

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


def method_not_allowed() -> AdminResponse:
    return AdminResponse(405, {"message": "Method not allowed"})
