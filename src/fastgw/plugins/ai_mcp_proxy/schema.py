"""Config of ai-mcp-proxy, with Kong's field names and defaults.

Kong's five modes: ``conversion-listener`` (the route answers MCP itself and
its service's REST endpoints are the tools), ``passthrough-listener`` (the
service is an MCP server; fastgw checks every message and applies the tool
ACLs), and ``conversion-only`` (tools on a service, tagged with the plugin's
``tags``) with ``listener`` (one route serving the tools of every
conversion-only plugin its ``server.tag`` selects); ``upstream-server`` (Kong
AI Gateway 2.0: the service is an MCP server whose tools a listener with the
plugin's tag serves, each named ``<service>__<tool>``). ACLs list consumers
(and groups), or with ``acl_attribute_type: oauth_access_token`` the values
of an access token's claim (from ai-mcp-oauth2 or openid-connect).
"""

from __future__ import annotations

from typing import Any

from fastgw.config.kong_only import kong_defaults_only
from fastgw.config.schema import (
    Array,
    Boolean,
    Field,
    Integer,
    Number,
    Path,
    Record,
    String,
    Validation,
)

MODES = ("conversion-listener", "conversion-only", "listener", "passthrough-listener",
         "upstream-server")


def _object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "expected a JSON object (an OpenAPI schema)"


def _acl_fields() -> dict[str, Field]:
    return {
        "allow": Array(String(), description="Subjects allowed (consumers, groups)."),
        "deny": Array(String(), description="Subjects denied (deny wins)."),
    }


PARAMETER = Record({
    "name": String(required=True, description="The argument's name."),
    "in": String(one_of=("path", "query", "header"), default="query",
                 description="Where the argument goes in the REST request."),
    "schema": Field(check=_object, description="The argument's JSON schema."),
    "required": Boolean(default=False, description="The call must give it."),
    "description": String(description="What the argument is."),
}, description="An OpenAPI parameter.")

TOOL = Record(
    {
        "name": String(required=True, match=r"^[A-Za-z0-9_.-]{1,128}$",
                       match_message="a tool name is 1 to 128 of A-Z, a-z, 0-9, _, - and .",
                       description="The tool's name."),
        "description": String(description="What the tool does, for the model."),
        "method": String(one_of=("GET", "POST", "PUT", "PATCH", "DELETE"), default="GET",
                         description="The REST method."),
        "path": String(description="conversion-listener: the REST path, {name} for path "
                       "parameters; relative: under the service's path."),
        "parameters": Array(PARAMETER, description="The arguments (OpenAPI parameters)."),
        "request_body": Field(check=_object, description="The OpenAPI requestBody: its JSON "
                              "schema is the 'body' argument."),
        "annotations": Record({
            "title": String(description="A human title."),
            "read_only_hint": Boolean(description="Changes nothing."),
            "destructive_hint": Boolean(description="May destroy."),
            "idempotent_hint": Boolean(description="Repeating changes nothing more."),
            "open_world_hint": Boolean(description="Reaches outside systems."),
        }, description="MCP tool annotations."),
        "acl": Record(_acl_fields(),
                      description="Who may list and call this tool; replaces default_acl."),
    },
    ignored=kong_defaults_only({"headers": None, "host": None, "query": None,
                                "responses": None, "scheme": None}),
    description="One tool.",
)


def _check(config: dict, path: Path, ctx: Validation) -> None:
    mode = config["mode"]
    if mode == "listener" and config["server"]["tag"] is None:
        ctx.error(((path, "server"), "tag"), "required in listener mode (the tag of the "
                  "conversion-only and upstream-server plugins whose tools it serves)")
    if mode == "listener" and config["tools"]:
        ctx.error((path, "tools"), "a listener serves the tools of the conversion-only "
                  "and upstream-server plugins its server.tag selects: define them there")
    if mode == "upstream-server" and config["tools_cache_ttl_seconds"] is None:
        ctx.error((path, "tools_cache_ttl_seconds"), "required in upstream-server mode (how "
                  "long a listener keeps the MCP server's tool list)")
    if mode != "upstream-server" and config["tools_cache_ttl_seconds"] is not None:
        ctx.error((path, "tools_cache_ttl_seconds"), "only upstream-server mode lists an MCP "
                  "server's tools")
    if config["acl_attribute_type"] == "oauth_access_token" and \
            config["access_token_claim_field"] is None:
        ctx.error((path, "access_token_claim_field"), "required with acl_attribute_type "
                  "'oauth_access_token' (the claim whose values the ACLs list)")
    names = [tool["name"] for tool in config["tools"] or ()]
    for index, name in enumerate(names):
        if name in names[:index]:
            ctx.error(((path, "tools"), index), f"duplicate tool name '{name}'")
    if mode in ("conversion-listener", "conversion-only"):
        if not names:
            ctx.error((path, "tools"), f"{mode} needs at least one tool")
        for index, tool in enumerate(config["tools"] or ()):
            if tool["path"] is None:
                ctx.error((((path, "tools"), index), "path"), f"required in {mode} mode (the "
                          "REST endpoint the tool calls)")


SCHEMA = Record(
    {
        "mode": String(one_of=MODES, required=True, description="conversion-listener: the "
                       "route answers MCP and its service's REST endpoints are the tools; "
                       "passthrough-listener: the service is an MCP server, guarded."),
        "tools": Array(TOOL, description="The tools (passthrough-listener and "
                       "upstream-server: the MCP server's own, by name, for their acl)."),
        "tools_cache_ttl_seconds": Integer(between=(0, 86400),
                                           description="upstream-server: seconds a listener "
                                           "keeps the MCP server's tool list."),
        "default_acl": Array(Record({
            "scope": String(one_of=("tools",), default="tools", description="What it guards."),
            **_acl_fields(),
        }, description="A default ACL."), description="ACLs for tools without their own."),
        "include_consumer_groups": Boolean(default=False,
                                           description="ACL subjects include the consumer's "
                                           "groups."),
        "consumer_identifier": String(one_of=("consumer_id", "custom_id", "username"),
                                      default="username",
                                      description="How ACL lists name consumers."),
        "acl_attribute_type": String(one_of=("consumer", "oauth_access_token"),
                                     default="consumer",
                                     description="What ACLs are evaluated on."),
        "access_token_claim_field": String(description="With oauth_access_token: the claim."),
        "server": Record({
            "tag": String(description="Listener modes: the tag of the tools served."),
            "timeout": Number(between=(1, 2**31), default=10000,
                              description="Milliseconds a tool call may take."),
            "forward_client_headers": Boolean(default=True,
                                              description="Send the client's headers with "
                                              "tool calls (never the gateway's credentials)."),
        }, ignored=kong_defaults_only({"session": None}), default={},
            description="The MCP server the route is."),
        "logging": Record({
            "log_statistics": Boolean(default=False, description="MCP figures in the log."),
            "log_payloads": Boolean(default=False, description="Bodies in the log."),
            "log_audits": Boolean(default=False, description="ACL decisions in the log."),
        }, default={}, description="What the log gets."),
        "max_request_body_size": Integer(between=(0, 2**31), default=1048576,
                                         description="Largest MCP message (bytes); 0: the "
                                         "gateway's limit."),
    },
    validator=_check,
    description="Serve MCP tools on a route.",
)
