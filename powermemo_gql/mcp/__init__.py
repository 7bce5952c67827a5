"""The MCP server: tools that call the same services as the GraphQL API."""
