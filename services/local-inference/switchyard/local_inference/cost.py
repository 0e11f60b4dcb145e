"""Attribute a machine's hourly cost to the requests its engine served (pure; no engine, no I/O).

An accelerator costs `usd_per_hour` whether or not it is busy. `CostMeter` splits that cost over
time, exactly, between the requests in the engine and idle:

* Time is cut into slices at every event the service sees (a request admitted, its first token,
  its end). In a slice of length dt the machine costs `rate * dt` (rate = usd_per_hour / 3600).
* If no request is in the engine during the slice, that cost is **idle**.
* Otherwise it is divided among the requests in the engine in proportion to their **weight**,
  which is the number of tokens per engine step each one makes the engine process:

      weight = prefill_token_weight * prompt_tokens   from admission until its first token
      weight = 1                                       while decoding (one token per step)

  so a request's cost is  sum over slices of  rate * dt * weight_r / sum(weights in slice).

Over any interval, `attributed + idle == rate * elapsed` (up to float rounding), because every
slice is given away in full; `CostTotals` reports both. A request's cost is final when it ends.

Known approximations (documented in docs/services/local-inference.md): a request still waiting
in the engine's queue is charged as if it were prefilling; the growing attention cost of long
contexts is not weighted; `prefill_token_weight` (default 1: a prompt token costs what an output
token costs) can be calibrated per machine because prefill is cheaper per token than decode on
most accelerators.

Implementation: a running index `I(t) = integral of rate / W(t) dt` over busy time, where W is
the total weight, so a request of constant weight w accrues `w * (I(t1) - I(t0))`; every event
is O(1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CostMeter", "CostTotals", "UnknownRequest"]


class UnknownRequest(KeyError):
    """An event named a request the meter is not tracking."""


@dataclass(frozen=True, slots=True)
class CostTotals:
    """What the machine cost since the meter started, split between requests and idle."""

    elapsed_s: float
    machine_usd: float  # rate * elapsed
    idle_usd: float
    finished_usd: float  # sum of the costs of requests that have ended
    in_flight_usd: float  # accrued so far by requests still in the engine
    finished_requests: int
    in_flight_requests: int
    busy_s: float
    work_units: float  # weighted tokens of finished requests (prompt * prefill weight + output)

    @property
    def attributed_usd(self) -> float:
        return self.finished_usd + self.in_flight_usd

    @property
    def usd_per_work_unit(self) -> float | None:
        """Recent busy cost per weighted token (None before any request has finished)."""
        if self.work_units <= 0:
            return None
        return (self.machine_usd - self.idle_usd) / self.work_units


@dataclass(slots=True)
class _Request:
    weight: float
    index_at_start: float  # value of the index when `weight` took effect
    accrued_usd: float
    prompt_tokens: int


class CostMeter:
    """Splits `usd_per_hour` among in-flight requests by weight; the rest is idle."""

    def __init__(
        self,
        usd_per_hour: float,
        *,
        prefill_token_weight: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        start: float | None = None,
    ) -> None:
        if usd_per_hour < 0:
            raise ValueError("usd_per_hour must be >= 0")
        if prefill_token_weight <= 0:
            raise ValueError("prefill_token_weight must be > 0")
        self._rate = usd_per_hour / 3600.0
        self._prefill_weight = prefill_token_weight
        self._clock = clock
        self._start = clock() if start is None else start
        self._now = self._start
        self._index = 0.0
        self._total_weight = 0.0
        self._requests: dict[str, _Request] = {}
        self._idle_usd = 0.0
        self._busy_s = 0.0
        self._finished_usd = 0.0
        self._finished = 0
        self._work_units = 0.0

    @property
    def usd_per_hour(self) -> float:
        return self._rate * 3600.0

    @property
    def prefill_token_weight(self) -> float:
        return self._prefill_weight

    def _advance(self, now: float | None) -> None:
        now = self._clock() if now is None else now
        dt = now - self._now
        if dt <= 0:
            return  # events never move time backwards
        if self._total_weight > 0:
            self._index += self._rate * dt / self._total_weight
            self._busy_s += dt
        else:
            self._idle_usd += self._rate * dt
        self._now = now

    def _reweigh(self, request: _Request, weight: float) -> None:
        request.accrued_usd += request.weight * (self._index - request.index_at_start)
        self._total_weight = max(self._total_weight + weight - request.weight, 0.0)
        request.weight = weight
        request.index_at_start = self._index

    def admit(self, request_id: str, prompt_tokens: int, *, now: float | None = None) -> None:
        """A request entered the engine with `prompt_tokens` to prefill."""
        if request_id in self._requests:
            raise ValueError(f"request {request_id!r} is already in flight")
        self._advance(now)
        weight = max(prompt_tokens * self._prefill_weight, 1e-6)
        self._requests[request_id] = _Request(weight, self._index, 0.0, prompt_tokens)
        self._total_weight += weight

    def first_token(self, request_id: str, *, now: float | None = None) -> None:
        """The request's prefill is done; from now on it decodes one token per step."""
        request = self._get(request_id)
        self._advance(now)
        self._reweigh(request, 1.0)

    def finish(self, request_id: str, output_tokens: int = 0, *, now: float | None = None) -> float:
        """The request left the engine (any reason); returns its cost in USD, now final."""
        request = self._get(request_id)
        self._advance(now)
        self._reweigh(request, 0.0)
        del self._requests[request_id]
        if not self._requests:
            self._total_weight = 0.0  # drop float residue so idle starts exactly here
        self._finished_usd += request.accrued_usd
        self._finished += 1
        self._work_units += request.prompt_tokens * self._prefill_weight + output_tokens
        return request.accrued_usd

    def accrued(self, request_id: str, *, now: float | None = None) -> float:
        """Cost accrued so far by an in-flight request."""
        request = self._get(request_id)
        self._advance(now)
        return request.accrued_usd + request.weight * (self._index - request.index_at_start)

    def totals(self, *, now: float | None = None) -> CostTotals:
        self._advance(now)
        in_flight = sum(
            r.accrued_usd + r.weight * (self._index - r.index_at_start)
            for r in self._requests.values()
        )
        elapsed = self._now - self._start
        return CostTotals(
            elapsed_s=elapsed,
            machine_usd=self._rate * elapsed,
            idle_usd=self._idle_usd,
            finished_usd=self._finished_usd,
            in_flight_usd=in_flight,
            finished_requests=self._finished,
            in_flight_requests=len(self._requests),
            busy_s=self._busy_s,
            work_units=self._work_units,
        )

    def _get(self, request_id: str) -> _Request:
        try:
            return self._requests[request_id]
        except KeyError:
            raise UnknownRequest(request_id) from None
