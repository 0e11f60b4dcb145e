"""CostMeter: the machine's hourly cost split among requests by weight, idle the rest."""

from __future__ import annotations

import random

import pytest

from switchyard.local_inference.cost import CostMeter, UnknownRequest

RATE = 3.6  # USD per hour = 0.001 USD per second


def meter(**kwargs: float) -> CostMeter:
    return CostMeter(RATE, start=0.0, clock=lambda: 0.0, **kwargs)  # every event passes `now`


def test_idle_machine_costs_rate_times_time() -> None:
    m = meter()
    totals = m.totals(now=10.0)
    assert totals.idle_usd == pytest.approx(0.01)
    assert totals.machine_usd == pytest.approx(0.01)
    assert totals.attributed_usd == 0


def test_lone_request_pays_for_its_whole_time_in_the_engine() -> None:
    m = meter()
    m.admit("a", prompt_tokens=100, now=1.0)
    m.first_token("a", now=1.5)
    cost = m.finish("a", output_tokens=20, now=3.0)
    assert cost == pytest.approx(0.002)  # 2 s busy
    totals = m.totals(now=4.0)
    assert totals.idle_usd == pytest.approx(0.002)  # [0, 1] and [3, 4]
    assert totals.finished_usd + totals.idle_usd == pytest.approx(totals.machine_usd)


def test_decoding_requests_share_equally() -> None:
    m = meter()
    for rid in ("a", "b"):
        m.admit(rid, prompt_tokens=10, now=0.0)
        m.first_token(rid, now=0.0)
    assert m.finish("a", 5, now=4.0) == pytest.approx(0.002)
    assert m.finish("b", 5, now=4.0) == pytest.approx(0.002)


def test_prefill_is_weighted_by_prompt_tokens() -> None:
    m = meter()
    m.admit("decoder", prompt_tokens=1, now=0.0)
    m.first_token("decoder", now=0.0)
    m.admit("big", prompt_tokens=99, now=0.0)  # prefilling: weight 99 vs 1
    m.first_token("big", now=1.0)
    # during [0, 1]: big pays 99/100, decoder 1/100; during [1, 3]: half each
    assert m.finish("big", 10, now=3.0) == pytest.approx(0.001 * 0.99 + 0.001)
    assert m.finish("decoder", 10, now=3.0) == pytest.approx(0.001 * 0.01 + 0.001)


def test_prefill_token_weight_scales_prompt_work() -> None:
    m = meter(prefill_token_weight=0.5)
    m.admit("decoder", prompt_tokens=1, now=0.0)
    m.first_token("decoder", now=0.0)
    m.admit("big", prompt_tokens=2, now=0.0)  # weight 1: same as the decoder
    assert m.finish("big", 0, now=2.0) == pytest.approx(0.001)


def test_request_leaving_mid_way_stops_paying() -> None:
    m = meter()
    for rid in ("a", "b"):
        m.admit(rid, prompt_tokens=1, now=0.0)
    assert m.finish("a", now=2.0) == pytest.approx(0.001)
    assert m.finish("b", now=6.0) == pytest.approx(0.001 + 0.004)


def test_random_schedules_always_add_up() -> None:
    rng = random.Random(7)
    m = meter(prefill_token_weight=0.3)
    now = 0.0
    live: dict[str, bool] = {}  # id -> decoding?
    costs: list[float] = []
    for step in range(3000):
        now += rng.expovariate(20.0)
        action = rng.random()
        if action < 0.35 or not live:
            rid = f"r{step}"
            m.admit(rid, prompt_tokens=rng.randint(1, 2000), now=now)
            live[rid] = False
        elif action < 0.7:
            rid = rng.choice([r for r in live] or [None])  # type: ignore[list-item]
            if rid is not None and not live[rid]:
                m.first_token(rid, now=now)
                live[rid] = True
        else:
            rid = rng.choice(list(live))
            costs.append(m.finish(rid, output_tokens=rng.randint(0, 500), now=now))
            del live[rid]
        if step % 500 == 0:
            t = m.totals(now=now)
            assert t.attributed_usd + t.idle_usd == pytest.approx(t.machine_usd, rel=1e-9)
    for rid in list(live):
        costs.append(m.finish(rid, now=now + 1))
    totals = m.totals(now=now + 2)
    assert totals.in_flight_requests == 0
    assert sum(costs) == pytest.approx(totals.finished_usd, rel=1e-12)
    assert sum(costs) + totals.idle_usd == pytest.approx(RATE / 3600 * (now + 2), rel=1e-9)
    assert all(c >= 0 for c in costs)


def test_accrued_shows_cost_so_far() -> None:
    m = meter()
    m.admit("a", prompt_tokens=3, now=0.0)
    assert m.accrued("a", now=1.0) == pytest.approx(0.001)
    assert m.finish("a", now=2.0) == pytest.approx(0.002)


def test_usd_per_work_unit_estimates_token_prices() -> None:
    m = meter()
    assert m.totals(now=0.0).usd_per_work_unit is None
    m.admit("a", prompt_tokens=10, now=0.0)
    m.first_token("a", now=1.0)
    m.finish("a", output_tokens=10, now=2.0)
    assert m.totals(now=5.0).usd_per_work_unit == pytest.approx(0.002 / 20)


def test_bad_use_is_refused() -> None:
    with pytest.raises(ValueError):
        CostMeter(-1)
    with pytest.raises(ValueError):
        CostMeter(1, prefill_token_weight=0)
    m = meter()
    m.admit("a", 1, now=0.0)
    with pytest.raises(ValueError):
        m.admit("a", 1, now=0.0)
    with pytest.raises(UnknownRequest):
        m.finish("nope", now=1.0)


def test_time_never_runs_backwards() -> None:
    m = meter()
    m.admit("a", 1, now=5.0)
    assert m.finish("a", now=4.0) == 0.0  # an out-of-order clock reading adds nothing
    assert m.totals(now=5.0).machine_usd == pytest.approx(0.005)
