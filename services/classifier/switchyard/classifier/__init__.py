"""The classifier service: task type, complexity and escalation of a prompt, from one ONNX model."""
