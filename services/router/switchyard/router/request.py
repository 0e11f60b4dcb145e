"""`RoutedRequest`: the state of one request while the router works on it.

Created when a request is admitted (`Router._begin`), filled by each phase (decide, attempts),
and read by accounting once the request ends, whatever ended it.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import grpc
from opentelemetry.trace import Span

from switchyard.api.classifier.v1 import classifier_pb2
from switchyard.api.inference.v1 import inference_pb2
from switchyard.router.config import RouterConfig
from switchyard.router.conversion import HopResult
from switchyard.router.conversion import classified as to_classified
from switchyard.router.policy import BoundTarget, Classified, Decision, PolicyInputs
from switchyard.runtime.errors import DeadlineExceeded, SwitchyardError

__all__ = ["InFlight", "RoutedRequest", "status_of"]


class InFlight:
    """How many requests this router is serving now: the router counts each from admission to
    its accounting; shadow evaluation reads it to start its calls in a quiet moment."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass
class RoutedRequest:
    """The state of one request while it is routed."""

    request_id: str
    tenant: str
    config: RouterConfig
    operation: str
    time: datetime
    started: float
    deadline: float | None
    span: Span
    classification: classifier_pb2.Classification | None = None
    #: `classification` in the policy's terms (set with it, by `classify_done`).
    classified: Classified | None = None
    #: The classifier call running beside a forced target's backend call (routing._settle).
    classifying: asyncio.Task[None] | None = None
    #: The classify call's gRPC status name ("OK", "UNAVAILABLE", ...).
    classifier_status: str = ""
    #: True when the classifier was sent an excerpt of a prompt too long to send whole.
    classifier_excerpt: bool = False
    classifier_cost: float = 0.0
    #: The text the classifier was sent (the last user turn, or its excerpt).
    classifier_text: str = ""
    hops: list[HopResult] = field(default_factory=list)
    decision: Decision | None = None
    inputs: PolicyInputs | None = None
    served: BoundTarget | None = None
    served_model: str = ""
    usage: inference_pb2.Usage | None = None
    status: str = "UNKNOWN"
    finish_reason: inference_pb2.FinishReason = inference_pb2.FINISH_REASON_UNSPECIFIED
    #: Shadow evaluation: the share it was sampled at (0: not sampled), and a sampled
    #: stream's text as it was relayed (the judge needs the answer).
    sample_share: float = 0.0
    streamed_text: list[str] = field(default_factory=list)
    #: Counted in the router's `InFlight` (until its accounting starts).
    in_flight: bool = False

    def classify_done(self, classification: classifier_pb2.Classification) -> None:
        self.classification = classification
        self.classified = to_classified(classification)

    @property
    def task_type(self) -> str:
        """The classified task type ("" when the classifier gave none)."""
        return "" if self.classified is None else self.classified.task_type

    @property
    def cost_so_far(self) -> float:
        attempts = math.fsum(h.cost_usd for h in self.hops if h.kind == "GENERATE")
        return self.classifier_cost + attempts

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def time_left(self) -> bool:
        """True while the caller's deadline (if any) has not passed."""
        remaining = self.remaining()
        return remaining is None or remaining > 0

    def timeout(self, cap_s: float) -> float:
        remaining = self.remaining()
        if remaining is None:
            return cap_s
        if remaining <= 0:
            raise DeadlineExceeded("the caller's deadline passed while routing")
        return min(cap_s, remaining)


def status_of(exc: BaseException) -> str:
    """The status a request that ended with `exc` is recorded with (a gRPC code name)."""
    if isinstance(exc, SwitchyardError):
        return exc.code.name
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    if isinstance(exc, grpc.aio.AbortError):
        return "UNKNOWN"
    return "INTERNAL"
