"""Frontier proxy: OpenAI, Anthropic and any OpenAI-compatible API behind `InferenceService`.

Pure modules: `sse` (server-sent events decoding), `completion` (domain types), `pricing`,
`catalog`, `retry`, `breaker`, `openai_wire` and `anthropic_wire` (each API's wire format),
`status` (upstream HTTP errors -> Switchyard errors). I/O: `upstream` (one pooled httpx client per
upstream, retries, circuit breaker), `proxy` (one call end to end: span, cost), `servicer` (gRPC).
"""
