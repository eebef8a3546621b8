"""Tools made from REST endpoints (ai-mcp-proxy's conversion modes): what a
tool shows in ``tools/list``, how a ``tools/call``'s arguments become a
request (path, query, headers, body, as its ``parameters`` say), and how the
answer becomes the tool's result (a non-2xx answer is a result with
``isError``, as MCP wants tool failures reported)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from fastgw.mcp.acl import ACL
from fastgw.mcp.jsonrpc import INVALID_PARAMS, JSONRPCError

_ANNOTATIONS = {"title": "title", "read_only_hint": "readOnlyHint",
                "destructive_hint": "destructiveHint", "idempotent_hint": "idempotentHint",
                "open_world_hint": "openWorldHint"}


def _body_schema(request_body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema of an OpenAPI requestBody (its JSON content)."""
    if not request_body:
        return None
    content = request_body.get("content") or {}
    for media_type in ("application/json", *content):
        schema = (content.get(media_type) or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    return {"type": "object"}


@dataclass(frozen=True, slots=True)
class RestTool:
    name: str
    description: str
    method: str
    path: str
    parameters: tuple[dict[str, Any], ...]
    body_schema: dict[str, Any] | None
    body_required: bool
    annotations: dict[str, Any]
    acl: ACL | None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> RestTool:
        request_body = entry.get("request_body")
        annotations = {camel: entry["annotations"][name]
                       for name, camel in _ANNOTATIONS.items()
                       if (entry.get("annotations") or {}).get(name) is not None}
        return cls(entry["name"], entry.get("description") or "", entry.get("method") or "GET",
                   entry.get("path") or "", tuple(entry.get("parameters") or ()),
                   _body_schema(request_body), bool((request_body or {}).get("required")),
                   annotations, ACL.of(entry.get("acl")))

    def listing(self) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it."""
        properties: dict[str, Any] = {}
        required = []
        for parameter in self.parameters:
            schema = dict(parameter.get("schema") or {"type": "string"})
            if parameter.get("description"):
                schema.setdefault("description", parameter["description"])
            properties[parameter["name"]] = schema
            if parameter.get("required") or parameter.get("in") == "path":
                required.append(parameter["name"])
        if self.body_schema is not None:
            properties["body"] = self.body_schema
            if self.body_required:
                required.append("body")
        tool: dict[str, Any] = {"name": self.name, "description": self.description,
                                "inputSchema": {"type": "object", "properties": properties}}
        if required:
            tool["inputSchema"]["required"] = required
        if self.annotations:
            tool["annotations"] = self.annotations
        return tool

    def request(self, arguments: dict[str, Any], message_id: Any
                ) -> tuple[str, str, list[tuple[str, str]], bytes]:
        """(method, path and query, headers, body) for a call; JSONRPCError
        -32602 naming a required argument that is missing."""
        path, query, headers = self.path, [], []
        for parameter in self.parameters:
            name, where = parameter["name"], parameter.get("in", "query")
            value = arguments.get(name)
            if value is None:
                if parameter.get("required") or where == "path":
                    raise JSONRPCError(INVALID_PARAMS, f"Invalid params: missing required "
                                       f"argument '{name}'", message_id)
                continue
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            if where == "path":
                # Quoted whole: a value cannot add path segments ("../").
                path = path.replace("{" + name + "}", quote(text, safe=""))
            elif where == "header":
                headers.append((name, text))
            else:
                query.append((name, text))
        body = b""
        if self.body_schema is not None and arguments.get("body") is not None:
            body = orjson.dumps(arguments["body"])
            headers.append(("Content-Type", "application/json"))
        elif self.body_required:
            raise JSONRPCError(INVALID_PARAMS, "Invalid params: missing required argument "
                               "'body'", message_id)
        return self.method, path + ("?" + urlencode(query) if query else ""), headers, body


def tool_result(status: int, body: bytes) -> dict[str, Any]:
    """A REST answer as a CallToolResult."""
    text = body.decode("utf-8", "replace")
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}],
                              "isError": not 200 <= status < 300}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict) and not result["isError"]:
        result["structuredContent"] = value
    return result
