"""The MCP bench suite's upstream: the official SDK's MCPServer, stateless
and answering JSON (so that wrk can send a bare ``tools/call``), with an
``echo`` tool at /mcp, and a REST endpoint POST /rest/echo that the
conversion row's tool calls. Run by bench/run.py, pinned to the load core:

    python bench/mcp_upstream.py PORT
"""

from __future__ import annotations

import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

server = MCPServer("bench")


@server.tool()
def echo(text: str) -> str:
    """Answer the text."""
    return text


@server.custom_route("/rest/echo", methods=["POST"])
async def rest_echo(request: Request) -> JSONResponse:
    return JSONResponse({"text": "hello"})


def main() -> None:
    app = server.streamable_http_app(stateless_http=True, json_response=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
