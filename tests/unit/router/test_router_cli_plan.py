from __future__ import annotations

from pathlib import Path

import yaml

from switchyard.api.cost.v1 import cost_pb2
from switchyard.api.router.v1 import router_pb2
from switchyard.router.config import load_config
from switchyard.suite.plan import STANDIN_MODEL, plan_suite
from switchyard_client.cli.formatting import hops_table, report_table, usd


def test_plan_without_keys_uses_a_loud_local_standin(tmp_path: Path) -> None:
    plan = plan_suite(tmp_path, env={}, model_dir=tmp_path / "model", base_port=61000)
    assert plan.frontier == "standin"
    names = [s.name for s in plan.specs]
    assert names == [
        "standin-frontier",
        "classifier",
        "local-inference",
        "frontier-proxy",
        "router",
    ]
    catalog = yaml.safe_load((tmp_path / "frontier-catalog.yaml").read_text())
    (model,) = catalog["models"]
    assert model["name"] == STANDIN_MODEL and model["provider"] == "openai_compatible"
    assert model["base_url"] == "http://127.0.0.1:61004/v1"
    config = load_config(plan.router_config_path)  # the generated config validates
    assert config.targets["frontier-general"].model == STANDIN_MODEL
    assert plan.router_address == "127.0.0.1:61000"
    router = plan.specs[-1]
    assert router.env["SWITCHYARD_ROUTER_CONFIG"] == str(plan.router_config_path)


def test_plan_with_openai_key_uses_the_builtin_catalog(tmp_path: Path) -> None:
    plan = plan_suite(tmp_path, env={"OPENAI_API_KEY": "sk-x"}, model_dir=tmp_path)
    assert plan.frontier == "openai"
    assert "standin-frontier" not in [s.name for s in plan.specs]
    config = load_config(plan.router_config_path)
    assert config.targets["frontier-strong"].model == "gpt-4o"
    assert config.routing.task_rules["MATH"].frontier_target == "frontier-strong"


def test_tables_are_readable() -> None:
    cost = router_pb2.CostBreakdown(
        hops=[
            router_pb2.Hop(
                kind=router_pb2.HOP_KIND_CLASSIFY,
                service="classifier",
                status="OK",
                latency_ms=3.2,
                cost_usd=0.000001,
            ),
            router_pb2.Hop(
                kind=router_pb2.HOP_KIND_GENERATE,
                service="local-inference",
                target="local-general",
                model="small",
                status="UNAVAILABLE",
                latency_ms=1.0,
            ),
        ],
        total_cost_usd=0.000001,
        total_latency_ms=9.9,
    )
    text = hops_table(cost)
    assert "classify" in text and "UNAVAILABLE" in text and "$0.000001" in text
    report = cost_pb2.GetCostReportResponse(
        group_by=cost_pb2.COST_GROUPING_MODEL,
        baseline_model="gpt-4o-mini",
        rows=[
            cost_pb2.CostReportRow(
                key="small", requests=3, cost_usd=0.001, baseline_cost_usd=0.01, saving_usd=0.009
            )
        ],
        total=cost_pb2.CostReportRow(
            requests=3, cost_usd=0.001, baseline_cost_usd=0.01, saving_usd=0.009
        ),
    )
    text = report_table(report)
    assert "TOTAL" in text and "90.0%" in text and "gpt-4o-mini" in text
    assert usd(0) == "$0" and usd(1.5) == "$1.5000"
