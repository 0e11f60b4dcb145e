"""The providers' wire formats: OpenAI Chat Completions (OpenAI and OpenAI-compatible servers),
Anthropic Messages, the server-sent events both stream over, and `dialects`, which puts them
behind one interface. Pure: bytes and JSON in, domain types out."""
