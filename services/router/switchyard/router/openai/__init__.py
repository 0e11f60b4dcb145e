"""The router's OpenAI-compatible HTTP door: `/v1/chat/completions` onto the same `Router`.

- `schema`: the request and response shapes (pydantic); what is honoured and what is refused;
- `conversion`: pure conversions to and from the router's protobuf messages, and errors;
- `openapi`: the published OpenAPI document;
- `app`: the thin ASGI app; `server`: uvicorn on the router process's event loop.
"""
