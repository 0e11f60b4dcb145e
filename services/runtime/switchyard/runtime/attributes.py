"""Span names, attribute keys, baggage keys and metric names: the one place they are spelled.

Model calls use the OpenTelemetry GenAI semantic conventions (`gen_ai.*`); everything else is
Switchyard's own (`switchyard.*`). Every hop's span carries that hop's cost under `COST_USD`
(and `GEN_AI_USAGE_COST` on model calls) so a trace shows cost and latency hop by hop.
"""

from __future__ import annotations

__all__ = [
    "RPC_GRPC_STATUS_CODE",
    "RPC_METHOD",
    "RPC_SERVICE",
    "RPC_SYSTEM",
    "NETWORK_PEER_ADDRESS",
    "NETWORK_PEER_PORT",
    "BAGGAGE_KEYS",
    "BAGGAGE_TASK_TYPE",
    "BAGGAGE_TENANT",
    "COST_REPORT_GROUP_BY",
    "COST_REPORT_ROWS",
    "COST_USD",
    "EVALUATION_DROP_REASON",
    "EVALUATION_JUDGE_ANSWER",
    "EVALUATION_JUDGE_ORDER",
    "EVALUATION_SAMPLE_SHARE",
    "EVALUATION_SERVED_KIND",
    "EVALUATION_VERDICT",
    "FEEDBACK_VERDICT",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_REQUEST_TOP_P",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_COST",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "GEN_AI_REQUEST_SEED",
    "GEN_AI_REQUEST_STOP_SEQUENCES",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_SERVER_TIME_TO_FIRST_TOKEN",
    "GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN",
    "GEN_AI_SERVER_REQUEST_DURATION",
    "METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN",
    "METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN",
    "METRIC_GEN_AI_SERVER_REQUEST_DURATION",
    "METRIC_LOCAL_INFERENCE_REQUEST_COST",
    "METRIC_LOCAL_INFERENCE_IDLE_COST",
    "METRIC_LOCAL_INFERENCE_MACHINE_COST",
    "LOCAL_INFERENCE_IDLE_COST_USD",
    "LOCAL_INFERENCE_MACHINE_USD_PER_HOUR",
    "METRIC_GEN_AI_CLIENT_OPERATION_DURATION",
    "METRIC_GEN_AI_CLIENT_TOKEN_USAGE",
    "METRIC_EVALUATION_COST",
    "METRIC_EVALUATION_DROPPED",
    "METRIC_EVALUATION_JUDGED",
    "METRIC_EVALUATION_SAMPLED",
    "OUTCOMES_EXPORTED",
    "SERVICE_NAMESPACE",
    "SPAN_EVALUATION",
    "SPAN_EVALUATION_JUDGE",
    "SPAN_EVALUATION_SHADOW",
    "TASK_TYPE",
    "TENANT",
]

SERVICE_NAMESPACE = "switchyard"

# --- baggage: travels with the request across every hop -------------------------------------
BAGGAGE_TENANT = "switchyard.tenant"
BAGGAGE_TASK_TYPE = "switchyard.task_type"
BAGGAGE_KEYS = (BAGGAGE_TENANT, BAGGAGE_TASK_TYPE)

# --- switchyard.* attributes ----------------------------------------------------------------
TENANT = "switchyard.tenant"
TASK_TYPE = "switchyard.task_type"
COST_USD = "switchyard.cost.usd"
REQUEST_ID = "switchyard.request_id"

# --- OpenTelemetry GenAI semantic conventions -----------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
# No standard cost attribute exists yet; `gen_ai.usage.cost` is what tools read today (Langfuse).
GEN_AI_USAGE_COST = "gen_ai.usage.cost"
GEN_AI_OPERATION_CHAT = "chat"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
# Model-server timings, in seconds; the names of the GenAI server metrics, used on spans too.
GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = "gen_ai.server.time_to_first_token"
GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = "gen_ai.server.time_per_output_token"
GEN_AI_SERVER_REQUEST_DURATION = "gen_ai.server.request.duration"

# --- local inference (switchyard-local-inference) ---------------------------------------------
# The machine's hourly rate behind a local request's attributed cost.
LOCAL_INFERENCE_MACHINE_USD_PER_HOUR = "switchyard.local_inference.machine.usd_per_hour"
# Idle machine cost so far (USD), reported on the meter's log lines and metric.
LOCAL_INFERENCE_IDLE_COST_USD = "switchyard.local_inference.idle_cost.usd"

# --- metrics ---------------------------------------------------------------------------------
METRIC_GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_GEN_AI_SERVER_TIME_TO_FIRST_TOKEN = GEN_AI_SERVER_TIME_TO_FIRST_TOKEN
METRIC_GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN = GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN
METRIC_GEN_AI_SERVER_REQUEST_DURATION = GEN_AI_SERVER_REQUEST_DURATION
# Cumulative USD: attributed to requests, idle, and the machine's total (= the two added).
METRIC_LOCAL_INFERENCE_REQUEST_COST = "switchyard.local_inference.request_cost"
METRIC_LOCAL_INFERENCE_IDLE_COST = "switchyard.local_inference.idle_cost"
METRIC_LOCAL_INFERENCE_MACHINE_COST = "switchyard.local_inference.machine_cost"

# gRPC calls (the semantic conventions' rpc.* keys, as OpenTelemetry's gRPC instrumentation
# sets them): every server's SERVER span (switchyard.runtime.interceptors) carries them, and so
# do the router's classify and generate spans, the CLIENT spans of their calls.
RPC_SYSTEM = "rpc.system"
RPC_SERVICE = "rpc.service"
RPC_METHOD = "rpc.method"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"
NETWORK_PEER_ADDRESS = "network.peer.address"
NETWORK_PEER_PORT = "network.peer.port"

# --- router ----------------------------------------------------------------------------------
SPAN_ROUTER_CLASSIFY = "switchyard.router.classify"
SPAN_ROUTER_GENERATE = "switchyard.router.generate"
ROUTER_TARGET = "switchyard.router.target"
ROUTER_TARGET_KIND = "switchyard.router.target_kind"
ROUTER_BACKEND = "switchyard.router.backend"
ROUTER_REASON = "switchyard.router.reason"
ROUTER_REASON_DETAIL = "switchyard.router.reason_detail"
ROUTER_ESCALATION_SCORE = "switchyard.router.escalation_score"
ROUTER_ESCALATION_THRESHOLD = "switchyard.router.escalation_threshold"
ROUTER_DEFAULT_ROUTE = "switchyard.router.default_route"
# True when the classifier was sent an excerpt (start and end) of a prompt too long to send whole.
ROUTER_CLASSIFIER_EXCERPT = "switchyard.router.classifier_excerpt"
ROUTER_PROMPT_TOKENS_ESTIMATE = "switchyard.router.prompt_tokens_estimate"
ROUTER_CONTEXT_WINDOW = "switchyard.router.context_window"
ROUTER_ATTEMPT = "switchyard.router.attempt"
ROUTER_STATUS = "switchyard.router.status"
ROUTER_OPERATION = "switchyard.router.operation"
COMPLEXITY = "switchyard.complexity"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
METRIC_ROUTER_REQUESTS = "switchyard.router.requests"
# The router's OpenAI-compatible HTTP door: one SERVER span per request, named
# "{method} {route}" (HTTP semantic conventions), carrying the Router's attributes above.
SPAN_ROUTER_HTTP_CHAT_COMPLETIONS = "POST /v1/chat/completions"
SPAN_ROUTER_HTTP_MODELS = "GET /v1/models"
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_ROUTE = "http.route"
URL_PATH = "url.path"
ROUTER_STREAM = "switchyard.router.stream"
METRIC_ROUTER_COST = "switchyard.router.cost"
# CostService (served by the router): the report's grouping and how many rows it returned.
COST_REPORT_GROUP_BY = "switchyard.cost_report.group_by"
COST_REPORT_ROWS = "switchyard.cost_report.rows"

# Shadow evaluation (docs/services/outcomes.md): each evaluation is its own trace, linked to the
# request's span: the evaluation, its shadow call to the other tier, and two judge calls.
SPAN_EVALUATION = "switchyard.evaluation"
SPAN_EVALUATION_SHADOW = "switchyard.evaluation.shadow"
SPAN_EVALUATION_JUDGE = "switchyard.evaluation.judge"
EVALUATION_SERVED_KIND = "switchyard.evaluation.served_kind"
EVALUATION_SAMPLE_SHARE = "switchyard.evaluation.sample_share"
EVALUATION_VERDICT = "switchyard.evaluation.verdict"
# The judge call's order (1: the local answer is A, 2: the frontier answer is A) and what it
# answered (LOCAL, FRONTIER, TIE, UNPARSEABLE).
EVALUATION_JUDGE_ORDER = "switchyard.evaluation.judge.order"
EVALUATION_JUDGE_ANSWER = "switchyard.evaluation.judge.answer"
EVALUATION_DROP_REASON = "switchyard.evaluation.drop_reason"
METRIC_EVALUATION_SAMPLED = "switchyard.evaluation.sampled"
METRIC_EVALUATION_DROPPED = "switchyard.evaluation.dropped"
METRIC_EVALUATION_JUDGED = "switchyard.evaluation.judged"
METRIC_EVALUATION_COST = "switchyard.evaluation.cost"
# OutcomeService (served by the router): feedback's verdict, exported outcomes.
FEEDBACK_VERDICT = "switchyard.feedback.verdict"
OUTCOMES_EXPORTED = "switchyard.outcomes.exported"

# --- frontier proxy --------------------------------------------------------------------------
# Span per upstream call is named f"{GEN_AI_OPERATION_CHAT} {model}" (GenAI convention).
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
# Seconds from the call's start to the first text chunk (streams) or the answer (unary).
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
FRONTIER_MODEL = "switchyard.frontier.model"
FRONTIER_STREAM = "switchyard.frontier.stream"
FRONTIER_ATTEMPTS = "switchyard.frontier.attempts"
FRONTIER_PRICE_SOURCE = "switchyard.frontier.price_source"
# One span event per retry, with the attempt that failed, why, and the wait before the next.
EVENT_FRONTIER_RETRY = "switchyard.frontier.retry"
FRONTIER_RETRY_ATTEMPT = "switchyard.frontier.retry.attempt"
FRONTIER_RETRY_REASON = "switchyard.frontier.retry.reason"
FRONTIER_RETRY_DELAY_S = "switchyard.frontier.retry.delay_s"
EVENT_FRONTIER_CIRCUIT_OPEN = "switchyard.frontier.circuit_open"
METRIC_FRONTIER_COST = "switchyard.frontier.cost"

# --- classifier ------------------------------------------------------------------------------
# On the ClassifierService call's span, next to TASK_TYPE, COMPLEXITY and COST_USD.
CLASSIFIER_COMPLEXITY_LEVEL = "switchyard.classifier.complexity_level"
CLASSIFIER_ESCALATION_PROBABILITY = "switchyard.classifier.escalation_probability"
CLASSIFIER_MODEL_VERSION = "switchyard.classifier.model_version"
CLASSIFIER_PROMPTS = "switchyard.classifier.prompts"
CLASSIFIER_INPUT_TOKENS = "switchyard.classifier.input_tokens"
CLASSIFIER_TRUNCATED = "switchyard.classifier.truncated"
CLASSIFIER_BATCH_SIZE = "switchyard.classifier.batch_size"
CLASSIFIER_CPU_SECONDS = "switchyard.classifier.cpu_seconds"
CLASSIFIER_USD_PER_CORE_HOUR = "switchyard.classifier.usd_per_core_hour"
