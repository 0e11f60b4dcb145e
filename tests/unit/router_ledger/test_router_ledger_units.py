"""Pure parts of the ledger: record validation, money, percentiles, URLs, conversion, windows."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from switchyard.api.cost.v1 import cost_pb2
from switchyard.router.cost_service import TenantScope, resolve_window
from switchyard.router.ledger import (
    AttemptRecord,
    CostReport,
    CostReportRow,
    Grouping,
    RequestRecord,
    parse_ledger_url,
)
from switchyard.router.ledger.aggregate import percentile, percentile_ranks
from switchyard.router.ledger.conversion import grouping_from_proto, report_to_proto
from switchyard.router.ledger.postgres import describe_dsn
from switchyard.router.ledger.records import RouteOnlyCalls, from_nanodollars, to_nanodollars
from switchyard.runtime.errors import InvalidArgument

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
ATTEMPT = AttemptRecord("local", "local-inference", "smollm2", "OK", 80.0, 0.0004, 100, 20)


def record(**changes: object) -> RequestRecord:
    fields: dict[str, object] = dict(
        request_id="r-1",
        time=NOW,
        tenant="acme",
        task_type="MATH",
        complexity=0.3,
        target="local",
        target_kind="LOCAL",
        model="smollm2",
        reason="BELOW_THRESHOLD",
        escalation_score=0.1,
        status="OK",
        classifier_cost_usd=0.00001,
        total_cost_usd=0.00041,
        latency_ms=95.0,
        input_tokens=100,
        output_tokens=20,
        baseline_cost_usd=0.001,
        attempts=(ATTEMPT,),
    )
    fields.update(changes)
    return RequestRecord(**fields)  # type: ignore[arg-type]


# --- records ---------------------------------------------------------------------------------


def test_a_valid_record_is_kept_in_utc() -> None:
    plus_five = NOW.astimezone(timezone(timedelta(hours=5)))
    built = record(time=plus_five, attempts=[ATTEMPT])
    assert built.time == NOW and built.time.tzinfo is UTC
    assert built.attempts == (ATTEMPT,)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time": datetime(2026, 5, 1)}, "timezone-aware"),  # noqa: DTZ001
        ({"total_cost_usd": -0.1}, "non-negative"),
        ({"classifier_cost_usd": math.nan}, "finite"),
        ({"baseline_cost_usd": math.inf}, "finite"),
        ({"latency_ms": -1.0}, "non-negative"),
        ({"input_tokens": -1}, "non-negative integer"),
        ({"output_tokens": 1.5}, "non-negative integer"),
        ({"output_tokens": True}, "non-negative integer"),
        ({"status": "ok"}, "gRPC status code name"),
        ({"target_kind": "CLOUD"}, "target_kind"),
        ({"complexity": 1.5}, "between 0 and 1"),
        ({"escalation_score": -0.1}, "between 0 and 1"),
        ({"request_id": ""}, "request_id must not be empty"),
        ({"request_id": "x" * 201}, "at most 200"),
        ({"tenant": ""}, "tenant must not be empty"),
        ({"model": "a\x00b"}, "NUL"),
        ({"total_cost_usd": 0.0}, "must equal classifier_cost_usd plus"),
        ({"attempts": ("not an attempt",)}, "AttemptRecord"),
    ],
)
def test_bad_records_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        record(**changes)


def test_bad_attempts_are_refused() -> None:
    with pytest.raises(ValueError, match="cost_usd"):
        dataclasses.replace(ATTEMPT, cost_usd=-1e-9)
    with pytest.raises(ValueError, match="status"):
        dataclasses.replace(ATTEMPT, status="FAILED")
    with pytest.raises(ValueError, match="backend"):
        dataclasses.replace(ATTEMPT, backend="")


def test_total_tolerates_only_rounding() -> None:
    record(total_cost_usd=0.00041 + 2e-9)  # within a nano-dollar per part
    with pytest.raises(ValueError, match="must equal"):
        record(total_cost_usd=0.00041 + 1e-7)


def test_empty_task_type_and_unknown_scores_are_allowed() -> None:
    built = record(task_type="", complexity=None, escalation_score=None)
    assert built.task_type == "" and built.complexity is None


def test_money_is_stored_in_nanodollars() -> None:
    assert to_nanodollars(0.000001234) == 1234
    assert to_nanodollars(1.5e-10) == 0
    assert to_nanodollars(0.0) == 0
    assert from_nanodollars(to_nanodollars(12.345678912)) == 12.345678912


# --- percentiles -----------------------------------------------------------------------------


def test_percentile_matches_numpy_linear() -> None:
    rng = random.Random(3)
    for n in (1, 2, 3, 7, 20, 101, 1000):
        values = sorted(rng.uniform(0, 5000) for _ in range(n))
        for p in (0.0, 0.5, 0.95, 0.99, 1.0):
            expected = float(np.percentile(values, p * 100))
            assert percentile(values, p) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_percentile_known_values() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([10.0], 0.95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(v) for v in range(100)], 0.95) == pytest.approx(94.05)
    assert percentile_ranks(21, 0.95) == (19, 19, 0.0)
    lower, upper, fraction = percentile_ranks(20, 0.95)
    assert (lower, upper) == (18, 19) and fraction == pytest.approx(0.05)
    with pytest.raises(ValueError):
        percentile_ranks(0, 0.5)


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/switchyard/ledger.db", Path("/var/lib/switchyard/ledger.db")),
        ("sqlite:ledger.db", Path("ledger.db")),
        ("sqlite:data/ledger.db", Path("data/ledger.db")),
        ("SQLITE:///a%20b/ledger.db", Path("/a b/ledger.db")),
        ("sqlite:~/ledger.db", Path("~/ledger.db").expanduser()),
    ],
)
def test_sqlite_urls(url: str, path: Path) -> None:
    location = parse_ledger_url(url)
    assert location.backend == "sqlite" and location.path == path
    assert location.busy_timeout_s == 30.0


def test_sqlite_busy_timeout_option() -> None:
    location = parse_ledger_url("sqlite:///var/ledger.db?busy_timeout_s=0.5")
    assert (location.path, location.busy_timeout_s) == (Path("/var/ledger.db"), 0.5)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("ledger.db", "needs a scheme"),
        ("sqlite://host/ledger.db", "no host"),
        ("sqlite:///", "must name a file"),
        ("sqlite::memory:", "not durable"),
        ("mysql://x/y", "unsupported ledger URL scheme"),
        ("postgresql:db", "looks like"),
        ("sqlite:l.db?busy_timeout_s=0", "busy_timeout_s must be"),
        ("sqlite:l.db?busy_timeout_s=soon", "busy_timeout_s must be"),
        ("sqlite:l.db?mode=ro", "unknown sqlite ledger URL option 'mode'"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_ledger_url(url)


def test_postgres_url_is_described_without_its_password() -> None:
    url = "postgresql://router:s3cr3t-pw@db.internal:6432/ledger?sslmode=require"
    location = parse_ledger_url(url)
    assert location.backend == "postgresql" and location.dsn == url
    assert location.describe() == "postgresql://router@db.internal:6432/ledger"
    assert "s3cr3t" not in describe_dsn(url)
    assert parse_ledger_url("postgres://h/db").backend == "postgresql"


# --- conversion ------------------------------------------------------------------------------


def test_report_to_proto() -> None:
    routed = RouteOnlyCalls(7, 1, 0.00007, 3.5, 9.0)
    row = CostReportRow("gpt-4.1", 3, 1, 300, 60, 0.25, 120.5, 900.0, 0.4, 0.15, routed)
    report = CostReport(NOW - timedelta(hours=24), NOW, Grouping.MODEL, None, (row,), row)
    message = report_to_proto(report, "gpt-4.1")
    assert message.group_by == cost_pb2.COST_GROUPING_MODEL
    assert message.baseline_model == "gpt-4.1"
    assert message.start_time.ToDatetime(tzinfo=UTC) == NOW - timedelta(hours=24)
    assert message.end_time.ToDatetime(tzinfo=UTC) == NOW
    [proto_row] = message.rows
    assert (proto_row.key, proto_row.requests, proto_row.failed_requests) == ("gpt-4.1", 3, 1)
    assert (proto_row.input_tokens, proto_row.output_tokens) == (300, 60)
    assert (proto_row.cost_usd, proto_row.baseline_cost_usd, proto_row.saving_usd) == (
        0.25,
        0.4,
        0.15,
    )
    assert (proto_row.latency_p50_ms, proto_row.latency_p95_ms) == (120.5, 900.0)
    r = proto_row.route_only
    assert (r.requests, r.failed_requests, r.cost_usd) == (7, 1, 0.00007)
    assert (r.latency_p50_ms, r.latency_p95_ms) == (3.5, 9.0)
    assert message.total == proto_row


def test_groupings_from_proto() -> None:
    assert grouping_from_proto(cost_pb2.COST_GROUPING_TASK_TYPE) is Grouping.TASK_TYPE
    assert grouping_from_proto(cost_pb2.COST_GROUPING_TARGET) is Grouping.TARGET
    assert grouping_from_proto(cost_pb2.COST_GROUPING_UNSPECIFIED) is None
    assert grouping_from_proto(42) is None


# --- the report window -----------------------------------------------------------------------


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def test_window_defaults() -> None:
    assert resolve_window(cost_pb2.GetCostReportRequest(), NOW) == (NOW - timedelta(hours=24), NOW)
    end = NOW - timedelta(days=3)
    request = cost_pb2.GetCostReportRequest(end_time=ts(end))
    assert resolve_window(request, NOW) == (end - timedelta(hours=24), end)
    start = NOW - timedelta(days=30)
    request = cost_pb2.GetCostReportRequest(start_time=ts(start))
    assert resolve_window(request, NOW) == (start, NOW)


def test_window_limits() -> None:
    start = NOW - timedelta(days=400)
    assert resolve_window(cost_pb2.GetCostReportRequest(start_time=ts(start)), NOW) == (start, NOW)
    too_long = cost_pb2.GetCostReportRequest(start_time=ts(start - timedelta(seconds=1)))
    with pytest.raises(InvalidArgument, match="at most 400"):
        resolve_window(too_long, NOW)
    future = cost_pb2.GetCostReportRequest(start_time=ts(NOW + timedelta(hours=1)))
    with pytest.raises(InvalidArgument, match="must be after"):
        resolve_window(future, NOW)
    out_of_range = cost_pb2.GetCostReportRequest(end_time=Timestamp(seconds=2**40))
    with pytest.raises(InvalidArgument, match="end_time is not a valid timestamp"):
        resolve_window(out_of_range, NOW)


def test_tenant_scope() -> None:
    assert TenantScope.admin().is_admin and TenantScope.admin().tenant is None
    assert TenantScope.of("acme").tenant == "acme" and not TenantScope.of("acme").is_admin
    with pytest.raises(ValueError):
        TenantScope.of("")
