"""Python client for Switchyard's router.

    from switchyard_client import SwitchyardClient
    client = SwitchyardClient("localhost:50051", api_key="sy-...")
    print(client.complete("What is the capital of France?").text)

`client.feedback(request_id, good=True)` rates an answer; `client.export_outcomes()` and
`client.calibrate(...)` read what the router learned from its traffic
(docs/services/outcomes.md). `AsyncSwitchyardClient` is the same API for asyncio. Every call
carries a deadline, the `authorization: Bearer` key, and the caller's OpenTelemetry trace
context (W3C `traceparent` and `baggage` metadata), so a caller's trace continues into
Switchyard; `capture_trace_ids()` collects the trace id Switchyard returns for each call.
"""

from switchyard_client.client import (
    AsyncSwitchyardClient,
    CostGrouping,
    Message,
    RoutingOptions,
    SwitchyardClient,
    capture_trace_ids,
)
from switchyard_client.errors import (
    BudgetExceeded,
    InvalidRequest,
    MessageTooLarge,
    NotAuthenticated,
    SwitchyardClientError,
    SwitchyardUnavailable,
)
from switchyard_client.outcomes import outcome_record

__all__ = [
    "AsyncSwitchyardClient",
    "BudgetExceeded",
    "CostGrouping",
    "InvalidRequest",
    "Message",
    "MessageTooLarge",
    "NotAuthenticated",
    "RoutingOptions",
    "SwitchyardClient",
    "SwitchyardClientError",
    "SwitchyardUnavailable",
    "capture_trace_ids",
    "outcome_record",
]
