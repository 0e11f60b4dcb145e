"""Frontier proxy: OpenAI, Anthropic and any OpenAI-compatible API behind `InferenceService`.

One room per phase of a call:

- `service` wires the process (catalog, redactor, upstream clients, servicer); `settings`,
  `servicer` (thin gRPC), `conversion` (protobuf <-> domain, request validation).
- `catalog` (models, keys, context windows), `pricing` (exact cost), `completion` (domain
  types), `admission` (default max_tokens, context-window check): pure.
- `proxy` runs one call: the retry loop, pricing, logging; `relay` turns a streamed body into
  deltas; `tracing` is the call's span.
- `providers/`: each API's wire format (`openai_wire`, `anthropic_wire`, shared `wire`), SSE
  decoding (`sse`) and `dialects` (one interface over them). Pure.
- `resilience/`: `retry` (backoff, Retry-After), `breaker` (circuit breaker), `failures`
  (what an attempt's failure means), `status` (failures -> Switchyard errors). Pure.
- `upstream` (one pooled httpx client + breaker per base URL) and `transport/` (httpx's
  client on an asyncio network backend and an O(1) connection pool): I/O.
"""
