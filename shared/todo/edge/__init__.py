"""The edge: HTTP handling, JWT verification, problem responses, the OpenAPI document."""
