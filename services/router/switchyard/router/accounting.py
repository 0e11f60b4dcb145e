"""The account phase: once a request ends, whatever ended it, count it exactly once.

`RequestAccounting.finish` sets the request span's final attributes, adds the request and cost
metrics, builds the one ledger record (`RequestRecord`, with every attempt), counts it in the
tenant's spend at once (`SpendTracker.add_pending`) and hands it to the ledger writer, which
returns a future that resolves once the record is durable (`LedgerWriter.submit`): the router
awaits it before the answer is sent.

The record's `model` is the model its target serves in the router's registry, the same name a
route-only call records, whatever the upstream answered with (a stand-in frontier served by
the local model answers with the local model's name; that name stays on the attempt). Only a
target that names no model records what the backend reported.
"""

from __future__ import annotations

import asyncio
import math
import time

import grpc

from switchyard.router.budget import SpendTracker
from switchyard.router.ledger import AttemptRecord, RequestRecord
from switchyard.router.ledger.writer import LedgerWriter
from switchyard.router.policy import bind, price
from switchyard.router.request import RoutedRequest
from switchyard.runtime import attributes as attr
from switchyard.runtime.errors import SwitchyardError
from switchyard.runtime.logging import get_logger
from switchyard.runtime.telemetry import get_meter

__all__ = ["RequestAccounting"]

log = get_logger(__name__)

_STATUS_NAMES = frozenset(code.name for code in grpc.StatusCode)


def _status(name: str) -> str:
    return name if name in _STATUS_NAMES else "UNKNOWN"


class RequestAccounting:
    def __init__(self, spend: SpendTracker, ledger: LedgerWriter) -> None:
        self._spend = spend
        self._ledger = ledger
        meter = get_meter(__name__)
        self._requests = meter.create_counter(
            attr.METRIC_ROUTER_REQUESTS, unit="{request}", description="Requests routed"
        )
        self._cost = meter.create_counter(
            attr.METRIC_ROUTER_COST, unit="USD", description="What routed requests cost"
        )

    def finish(self, req: RoutedRequest) -> asyncio.Future[None] | None:
        """Account for the request: span, metrics, spend tracker and one ledger record; the
        future resolves when the record is durable (None when no record could be built)."""
        latency_ms = (time.perf_counter() - req.started) * 1000
        total = math.fsum(h.cost_usd for h in req.hops)
        attributes: dict[str, str | float | int] = {
            attr.COST_USD: total,
            attr.GEN_AI_USAGE_COST: total,
            attr.ROUTER_STATUS: req.status,
        }
        if req.usage is not None:
            attributes[attr.GEN_AI_USAGE_INPUT_TOKENS] = req.usage.input_tokens
            attributes[attr.GEN_AI_USAGE_OUTPUT_TOKENS] = req.usage.output_tokens
        if req.served_model:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = req.served_model
        if req.served is not None:
            attributes[attr.ROUTER_TARGET] = req.served.name
        req.span.set_attributes(attributes)
        task_type = req.task_type
        config = req.config
        decision = req.decision
        target = req.served or (decision.target if decision else None)
        if target is None:
            # refused before a decision (bad input, hard budget, policy): count it where the
            # classifier-down default would have gone
            try:
                target = bind(config, config.routing.default_target)
            except SwitchyardError:  # pragma: no cover - validated config
                return None
        self._requests.add(
            1,
            {
                attr.TENANT: req.tenant,
                attr.TASK_TYPE: task_type,
                attr.GEN_AI_REQUEST_MODEL: target.model,
                attr.ROUTER_TARGET: target.name,
                attr.ROUTER_STATUS: req.status,
                attr.ROUTER_OPERATION: req.operation,
            },
        )
        self._cost.add(
            total,
            {
                attr.TENANT: req.tenant,
                attr.TASK_TYPE: task_type,
                attr.GEN_AI_REQUEST_MODEL: target.model,
                attr.ROUTER_TARGET: target.name,
            },
        )
        in_tok = req.usage.input_tokens if req.usage else 0
        out_tok = req.usage.output_tokens if req.usage else 0
        baseline = 0.0
        if req.usage is not None:
            baseline_target = config.targets.get(config.baseline_target)
            if baseline_target is not None:
                baseline = price(baseline_target.pricing, in_tok, out_tok)
        attempts = tuple(
            AttemptRecord(
                target=h.target,
                backend=h.service,
                model=h.model or "default",
                status=_status(h.status),
                latency_ms=h.latency_ms,
                cost_usd=h.cost_usd,
                input_tokens=h.input_tokens,
                output_tokens=h.output_tokens,
            )
            for h in req.hops
            if h.kind == "GENERATE"
        )
        c = req.classified
        try:
            record = RequestRecord(
                request_id=req.request_id,
                time=req.time,
                tenant=req.tenant,
                task_type=task_type,
                complexity=c.complexity if c else None,
                target=target.name,
                target_kind=target.kind.value,
                model=target.model or req.served_model or "default",
                reason=decision.reason.value if decision else "UNSPECIFIED",
                escalation_score=c.escalation_probability if c else None,
                status=_status(req.status),
                classifier_cost_usd=req.classifier_cost,
                total_cost_usd=req.classifier_cost + math.fsum(a.cost_usd for a in attempts),
                latency_ms=latency_ms,
                input_tokens=in_tok,
                output_tokens=out_tok,
                baseline_cost_usd=baseline,
                attempts=attempts,
                operation=req.operation,
                classifier_model_version=(
                    req.classification.model_version if req.classification else ""
                ),
                prompt_chars=len(req.classifier_text),
            )
        except ValueError as exc:  # a bug, not the caller's fault: log, keep serving
            log.error("ledger record rejected", request_id=req.request_id, error=str(exc))
            return None
        self._spend.add_pending(
            req.tenant, record.total_cost_usd, record.request_id, at=record.time
        )
        return self._ledger.submit(record)
