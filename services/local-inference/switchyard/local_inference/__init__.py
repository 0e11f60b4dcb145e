"""Local inference: InferenceService on vLLM's engine, with attributed machine cost."""
