"""Upstream trouble: when to retry (`retry`), when to stop calling (`breaker`), what a failed
attempt means (`failures`) and what the caller sees (`status`). Pure."""
