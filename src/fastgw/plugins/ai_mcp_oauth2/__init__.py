"""ai-mcp-oauth2: an MCP route as an OAuth 2.0 resource server (the MCP
authorization specification), after Kong's plugin of the same name."""
