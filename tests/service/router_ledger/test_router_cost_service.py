"""CostService in-process on port 0 over a real channel, with a real SQLite ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from router_ledger_data import WINDOW_END, WINDOW_START, dataset, make_record, reference_report
from support.postgres import PostgresServer

from switchyard.api.cost.v1 import cost_pb2, cost_pb2_grpc
from switchyard.router.cost_service import CostServiceServicer, TenantScope
from switchyard.router.ledger import CostLedger, Grouping, RequestRecord, open_ledger
from switchyard.runtime.errors import Unauthenticated
from switchyard.runtime.server import ServiceDefinition, ServiceRuntime, start_server
from switchyard.runtime.settings import ServiceSettings, SettingsConfigDict

BASELINE = "gpt-4.1"
KEYS = {"admin-key": TenantScope.admin(), "acme-key": TenantScope.of("acme")}
NOW = WINDOW_END  # the servicer's clock: "the last 24 hours" is exactly the test window


class CostTestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_COST_TEST_")
    service_name = "cost-test"
    host: str = "127.0.0.1"


def tenant_of(context: grpc.aio.ServicerContext) -> TenantScope:
    """What the router's authentication does, reduced to a table of keys."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scope = KEYS.get(value.removeprefix("Bearer "))
            if scope is not None:
                return scope
    raise Unauthenticated("unknown API key")


def cost_definition(ledger: CostLedger) -> ServiceDefinition[CostLedger]:
    @asynccontextmanager
    async def resources(runtime: ServiceRuntime) -> AsyncIterator[CostLedger]:
        yield ledger

    def register(server: grpc.aio.Server, opened: CostLedger) -> Sequence[str]:
        servicer = CostServiceServicer(opened, BASELINE, tenant_of, clock=lambda: NOW)
        cost_pb2_grpc.add_CostServiceServicer_to_server(servicer, server)
        return [cost_pb2.DESCRIPTOR.services_by_name["CostService"].full_name]

    return ServiceDefinition("cost-test", CostTestSettings(), resources, register)


@asynccontextmanager
async def serve(ledger: CostLedger) -> AsyncIterator[cost_pb2_grpc.CostServiceStub]:
    async with (
        start_server(cost_definition(ledger), port=0) as running,
        grpc.aio.insecure_channel(running.address) as channel,
    ):
        yield cost_pb2_grpc.CostServiceStub(channel)


@pytest.fixture(scope="module")
def records() -> list[RequestRecord]:
    return dataset()


@pytest.fixture
async def stub(
    tmp_path: Path, records: list[RequestRecord]
) -> AsyncIterator[cost_pb2_grpc.CostServiceStub]:
    ledger = await open_ledger(f"sqlite://{tmp_path}/ledger.db")
    try:
        await asyncio.gather(*(ledger.record(record) for record in records))
        async with serve(ledger) as client:
            yield client
    finally:
        await ledger.close()


def ts(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def by_key(response: cost_pb2.GetCostReportResponse) -> dict[str, cost_pb2.CostReportRow]:
    return {row.key: row for row in response.rows}


async def test_admin_sees_every_tenant(
    stub: cost_pb2_grpc.CostServiceStub, records: list[RequestRecord]
) -> None:
    request = cost_pb2.GetCostReportRequest(
        start_time=ts(WINDOW_START),
        end_time=ts(WINDOW_END),
        group_by=cost_pb2.COST_GROUPING_TENANT,
    )
    response = await stub.GetCostReport(request, metadata=auth("admin-key"), timeout=10)
    expected_rows, expected_total = reference_report(records, Grouping.TENANT)
    assert set(by_key(response)) == set(expected_rows) == {"acme", "globex", "initech"}
    for key, row in by_key(response).items():
        assert row.requests == expected_rows[key]["requests"]
        assert row.failed_requests == expected_rows[key]["failed_requests"]
        assert row.cost_usd == expected_rows[key]["cost_usd"]
        assert row.saving_usd == expected_rows[key]["saving_usd"]
        assert row.latency_p95_ms == pytest.approx(expected_rows[key]["latency_p95_ms"])
    assert expected_total is not None
    assert response.total.requests == expected_total["requests"]
    assert response.total.input_tokens == expected_total["input_tokens"]
    assert response.total.baseline_cost_usd == expected_total["baseline_cost_usd"]
    assert response.baseline_model == BASELINE
    assert response.group_by == cost_pb2.COST_GROUPING_TENANT
    assert response.start_time.ToDatetime() == WINDOW_START.replace(tzinfo=None)
    costs = [row.cost_usd for row in response.rows]
    assert costs == sorted(costs, reverse=True)


async def test_a_tenant_sees_only_its_own_requests(
    stub: cost_pb2_grpc.CostServiceStub, records: list[RequestRecord]
) -> None:
    request = cost_pb2.GetCostReportRequest(
        start_time=ts(WINDOW_START), end_time=ts(WINDOW_END), group_by=cost_pb2.COST_GROUPING_TENANT
    )
    response = await stub.GetCostReport(request, metadata=auth("acme-key"), timeout=10)
    assert [row.key for row in response.rows] == ["acme"]
    _, expected_total = reference_report(records, Grouping.MODEL, tenant="acme")
    assert expected_total is not None
    assert response.total.requests == expected_total["requests"]
    assert response.total.cost_usd == expected_total["cost_usd"]

    by_model = await stub.GetCostReport(
        cost_pb2.GetCostReportRequest(
            start_time=ts(WINDOW_START),
            end_time=ts(WINDOW_END),
            group_by=cost_pb2.COST_GROUPING_MODEL,
        ),
        metadata=auth("acme-key"),
        timeout=10,
    )
    assert sum(row.requests for row in by_model.rows) == expected_total["requests"]


async def test_default_window_is_the_last_24_hours(
    stub: cost_pb2_grpc.CostServiceStub, records: list[RequestRecord]
) -> None:
    request = cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_TARGET)
    response = await stub.GetCostReport(request, metadata=auth("admin-key"), timeout=10)
    assert response.end_time.ToDatetime() == NOW.replace(tzinfo=None)
    assert response.start_time.ToDatetime() == (NOW - timedelta(hours=24)).replace(tzinfo=None)
    expected_rows, _ = reference_report(records, Grouping.TARGET, NOW - timedelta(hours=24), NOW)
    assert {k: r.requests for k, r in by_key(response).items()} == {
        k: r["requests"] for k, r in expected_rows.items()
    }

    only_start = cost_pb2.GetCostReportRequest(
        start_time=ts(NOW - timedelta(hours=2)), group_by=cost_pb2.COST_GROUPING_TARGET
    )
    response = await stub.GetCostReport(only_start, metadata=auth("admin-key"), timeout=10)
    assert response.end_time.ToDatetime() == NOW.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"group_by": cost_pb2.COST_GROUPING_UNSPECIFIED}, "group_by must be one of"),
        ({"group_by": 99}, "group_by must be one of"),
        (
            {
                "group_by": cost_pb2.COST_GROUPING_MODEL,
                "start_time": ts(WINDOW_END),
                "end_time": ts(WINDOW_START),
            },
            "must be after start_time",
        ),
        (
            {
                "group_by": cost_pb2.COST_GROUPING_MODEL,
                "start_time": ts(WINDOW_START),
                "end_time": ts(WINDOW_START),
            },
            "must be after start_time",
        ),
        (
            {
                "group_by": cost_pb2.COST_GROUPING_MODEL,
                "start_time": ts(WINDOW_END - timedelta(days=401)),
                "end_time": ts(WINDOW_END),
            },
            "at most 400",
        ),
        (
            {
                "group_by": cost_pb2.COST_GROUPING_MODEL,
                "start_time": Timestamp(seconds=0, nanos=-5),
            },
            "start_time is not a valid timestamp",
        ),
    ],
    ids=["unspecified", "unknown-enum", "reversed", "empty", "too-long", "bad-timestamp"],
)
async def test_bad_requests_are_invalid_argument(
    stub: cost_pb2_grpc.CostServiceStub, request_fields: dict, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCostReport(
            cost_pb2.GetCostReportRequest(**request_fields), metadata=auth("admin-key"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


@pytest.mark.parametrize("metadata", [(), auth("wrong-key")], ids=["no-key", "wrong-key"])
async def test_unknown_callers_are_unauthenticated(
    stub: cost_pb2_grpc.CostServiceStub, metadata: tuple
) -> None:
    request = cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_MODEL)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCostReport(request, metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_an_empty_window_has_no_rows_and_a_zero_total(
    stub: cost_pb2_grpc.CostServiceStub,
) -> None:
    request = cost_pb2.GetCostReportRequest(
        start_time=ts(WINDOW_END + timedelta(days=30)),
        end_time=ts(WINDOW_END + timedelta(days=31)),
        group_by=cost_pb2.COST_GROUPING_MODEL,
    )
    response = await stub.GetCostReport(request, metadata=auth("admin-key"), timeout=10)
    assert list(response.rows) == []
    assert response.total == cost_pb2.CostReportRow()


@pytest.mark.postgres
async def test_a_lost_database_is_unavailable(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database()
    ledger = await open_ledger(dsn, pool_size=2, connect_timeout_s=2)
    try:
        await ledger.record(make_record("r", time=WINDOW_START))
        async with serve(ledger) as client:
            request = cost_pb2.GetCostReportRequest(group_by=cost_pb2.COST_GROUPING_MODEL)
            response = await client.GetCostReport(request, metadata=auth("admin-key"), timeout=10)
            assert response.total.requests == 1
            postgres_server.drop_database(dsn.rsplit("/", 1)[1])
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.GetCostReport(request, metadata=auth("admin-key"), timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert postgres_server.password not in (caught.value.details() or "")
    finally:
        await ledger.close()
