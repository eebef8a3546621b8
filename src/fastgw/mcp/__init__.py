"""The Model Context Protocol as the gateway speaks it: JSON-RPC messages
checked before anything acts on them (``jsonrpc``), tools made from REST
endpoints (``tools``), and who may list and call which tool (``acl``).
Used by the ai-mcp-proxy plugin."""
