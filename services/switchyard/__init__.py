"""Switchyard: hybrid LLM routing over gRPC."""
