"""The router's configuration: one YAML file, validated strictly.

The file names the classifier, the backends, the model registry (logical targets bound to a
backend and a model, with the prices the policy estimates with), the routing policy, the
tenants (API keys stored as SHA-256 hex digests) with their budgets, and the ledger.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from switchyard.api.classifier.v1 import classifier_pb2

__all__ = [
    "TASK_TYPE_NAMES",
    "BackendConfig",
    "BudgetConfig",
    "ClassifierConfig",
    "ConfigError",
    "EvaluationConfig",
    "EvaluationTenant",
    "LedgerConfig",
    "Pricing",
    "RouterConfig",
    "RoutingConfig",
    "TargetConfig",
    "TargetKind",
    "TaskRule",
    "TenantConfig",
    "hash_api_key",
    "load_config",
    "parse_config",
]

_PREFIX = "TASK_TYPE_"
#: Task type names without the enum prefix (`CHAT`, `MATH`, ...), as used in the config.
TASK_TYPE_NAMES: frozenset[str] = frozenset(
    name.removeprefix(_PREFIX)
    for name in classifier_pb2.TaskType.keys()
    if name != "TASK_TYPE_UNSPECIFIED"
)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

# strict: a YAML `true` or a quoted "0.5" is a mistake, not a number
NonNegative = Annotated[float, Field(ge=0, strict=True)]
Probability = Annotated[float, Field(ge=0, le=1, strict=True)]
Delta = Annotated[float, Field(ge=-1, le=1, strict=True)]


class ConfigError(ValueError):
    """The configuration file is missing or invalid; the message lists every problem."""


class TargetKind(StrEnum):
    LOCAL = "LOCAL"
    FRONTIER = "FRONTIER"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_task_types(by_task: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(by_task) - TASK_TYPE_NAMES)
    if unknown:
        raise ValueError(f"unknown task type(s) {unknown}; known: {sorted(TASK_TYPE_NAMES)}")
    return by_task


class Pricing(_Strict):
    """USD per million tokens, used for estimates and for the all-frontier baseline."""

    input_usd_per_million_tokens: NonNegative = 0.0
    output_usd_per_million_tokens: NonNegative = 0.0


class BackendConfig(_Strict):
    """A backend service speaking `switchyard.inference.v1.InferenceService`."""

    address: str = Field(min_length=1)
    kind: TargetKind
    timeout_s: Annotated[float, Field(gt=0)] = 120.0


class TargetConfig(_Strict):
    """A logical target: one model on one backend."""

    backend: str = Field(min_length=1)
    model: str = ""
    pricing: Pricing = Pricing()
    #: Tokens of prompt plus output the model holds. Unset: learned from the backend's
    #: ListModels; set: overrides what the backend reports.
    context_window: Annotated[int, Field(gt=0)] | None = None


class TaskRule(_Strict):
    """Per-task-type policy: its own threshold (absolute or relative to the default), its own
    local/frontier pair, or a fixed `target` that skips escalation (forcing)."""

    #: Always route this task type here; no escalation (forcing).
    target: str | None = None
    local_target: str | None = None
    frontier_target: str | None = None
    #: The threshold for this task type, instead of routing.escalation_threshold.
    escalation_threshold: Probability | None = None
    #: Added to routing.escalation_threshold for this task type: positive escalates less often,
    #: negative more often. The sum must stay in [0, 1].
    threshold_delta: Delta | None = None

    @model_validator(mode="after")
    def _fixed_or_escalating(self) -> TaskRule:
        problems: list[str] = []
        if self.target is not None:
            extra = [
                name
                for name in (
                    "local_target",
                    "frontier_target",
                    "escalation_threshold",
                    "threshold_delta",
                )
                if getattr(self, name) is not None
            ]
            if extra:
                problems.append(
                    "a rule with `target` routes there always (no escalation); it cannot also "
                    f"set {', '.join(extra)}"
                )
        if self.escalation_threshold is not None and self.threshold_delta is not None:
            problems.append(
                "set escalation_threshold (absolute) or threshold_delta (relative to "
                "routing.escalation_threshold), not both"
            )
        if (
            self.target is None
            and self.local_target is None
            and self.frontier_target is None
            and self.escalation_threshold is None
            and self.threshold_delta is None
        ):
            problems.append(
                "an empty rule changes nothing: set threshold_delta, escalation_threshold, "
                "local_target / frontier_target, or target"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def threshold(self, default: float) -> float | None:
        """This rule's escalation threshold given the default one, or None when it sets none."""
        if self.escalation_threshold is not None:
            return self.escalation_threshold
        if self.threshold_delta is not None:
            return default + self.threshold_delta
        return None


class RoutingConfig(_Strict):
    escalation_threshold: Probability = 0.5
    local_target: str
    frontier_target: str
    #: Where requests go when the classifier is down or past its deadline.
    default_target: str
    #: The target whose prices define the all-frontier baseline of the cost report.
    baseline_target: str | None = None
    #: Fallback chain per target, in order.
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    #: Rules keyed by task type name (`CHAT`, `MATH`, ...).
    task_rules: dict[str, TaskRule] = Field(default_factory=dict)
    #: Output tokens assumed (for cost estimates and context-window checks) when the request
    #: sets no max_tokens.
    estimated_output_tokens: Annotated[int, Field(ge=1)] = 256
    #: Multiplies the prompt-token estimate used to check that a prompt fits a target's context
    #: window (docs/routing-policy.md): above 1 is more cautious, below 1 less.
    window_estimate_factor: Annotated[float, Field(gt=0, le=4, strict=True)] = 1.0

    _task_rules = field_validator("task_rules")(classmethod(lambda cls, v: _known_task_types(v)))

    @model_validator(mode="after")
    def _rule_thresholds_in_range(self) -> RoutingConfig:
        problems = []
        for task, rule in self.task_rules.items():
            threshold = rule.threshold(self.escalation_threshold)
            if threshold is not None and not 0.0 <= threshold <= 1.0:
                problems.append(
                    f"task_rules.{task}: escalation_threshold {self.escalation_threshold} + "
                    f"threshold_delta {rule.threshold_delta} = {threshold:g}, outside [0, 1]"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ClassifierConfig(_Strict):
    address: str = Field(min_length=1)
    #: Deadline of the classify call; past it the default route is used.
    timeout_ms: Annotated[float, Field(gt=0)] = 500.0
    #: Longest text (UTF-8 bytes) sent to the classifier. A longer prompt is sent as an excerpt,
    #: its start and its end, and the decision says so. Keep it at or under the classifier's
    #: SWITCHYARD_CLASSIFIER_MAX_PROMPT_BYTES (default 262144), which refuses longer prompts.
    max_prompt_bytes: Annotated[int, Field(ge=256, le=64 * 1024 * 1024)] = 16 * 1024
    #: A request whose caller forced its target (`force_target`, or a target's name as the HTTP
    #: door's `model`). `classify`: the classifier is still asked, beside the backend call, so
    #: the ledger record, the response and the spans carry the task type, complexity and
    #: escalation score. `skip`: it is not asked; the request is answered without waiting for
    #: it (a classifier round trip sooner, one classification cheaper) and recorded with no task
    #: type (classifier status SKIPPED). A forced frontier target under a tenant's soft budget
    #: is classified either way: the task type names the local target it moves to.
    forced_targets: Literal["classify", "skip"] = "classify"


class BudgetConfig(_Strict):
    """USD per UTC day and per UTC calendar month. Soft: no frontier escalation. Hard: refuse."""

    daily_soft_usd: NonNegative | None = None
    daily_hard_usd: NonNegative | None = None
    monthly_soft_usd: NonNegative | None = None
    monthly_hard_usd: NonNegative | None = None

    @model_validator(mode="after")
    def _soft_below_hard(self) -> BudgetConfig:
        for period in ("daily", "monthly"):
            soft = getattr(self, f"{period}_soft_usd")
            hard = getattr(self, f"{period}_hard_usd")
            if soft is not None and hard is not None and soft > hard:
                raise ValueError(f"{period}_soft_usd ({soft}) is above {period}_hard_usd ({hard})")
        return self

    @property
    def is_limited(self) -> bool:
        return any(
            v is not None
            for v in (
                self.daily_soft_usd,
                self.daily_hard_usd,
                self.monthly_soft_usd,
                self.monthly_hard_usd,
            )
        )


class TenantConfig(_Strict):
    #: SHA-256 hex digests of the tenant's API keys (`switchyard hash-key KEY` prints one).
    api_key_sha256: list[str] = Field(default_factory=list)
    budget: BudgetConfig = BudgetConfig()

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, digests: list[str]) -> list[str]:
        bad = [i for i, d in enumerate(digests) if not _SHA256_HEX.match(d)]
        if bad:
            raise ValueError(
                f"entries {bad} are not SHA-256 hex digests (64 lowercase hex characters); "
                "store hash_api_key(key), never the key itself"
            )
        return digests


class LedgerConfig(_Strict):
    #: `sqlite:relative/path.db`, `sqlite:///absolute/path.db` (default, embedded) or
    #: `postgresql://...` (several router replicas).
    url: str = "sqlite:switchyard-ledger.db"

    @field_validator("url")
    @classmethod
    def _parsable(cls, url: str) -> str:
        from switchyard.router.ledger import parse_ledger_url

        parse_ledger_url(url)  # ValueError says what is wrong, without the password
        return url


Share = Annotated[float, Field(ge=0, le=1, strict=True)]


class EvaluationTenant(_Strict):
    """One tenant's shadow-evaluation shares (instead of the global ones) and prompt storage."""

    share: Share | None = None
    task_types: dict[str, Share] = Field(default_factory=dict)
    #: Keep the text the classifier read for this tenant's evaluated requests (None: global).
    store_prompts: bool | None = None

    _task_types = field_validator("task_types")(classmethod(lambda cls, v: _known_task_types(v)))


class EvaluationConfig(_Strict):
    """Shadow evaluation (docs/services/outcomes.md): a share of answered requests is also sent
    to the other tier, and a judge target compares the two answers. Off by default."""

    #: The logical target that judges (required once anything is sampled).
    judge_target: str | None = None
    #: Share of answered requests shadowed, unless a task type or tenant sets its own.
    share: Share = 0.0
    task_types: dict[str, Share] = Field(default_factory=dict)
    tenants: dict[str, EvaluationTenant] = Field(default_factory=dict)
    #: USD of shadow and judge calls per UTC day (required once anything is sampled).
    daily_budget_usd: NonNegative | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=256, strict=True)] = 2
    queue_size: Annotated[int, Field(ge=1, le=100_000, strict=True)] = 100
    #: Start a queued evaluation only while fewer than this many requests are being served by
    #: this router (None: whenever a slot is free). Served traffic goes first: under sustained
    #: load evaluations wait in the queue, and a full queue drops them (counted).
    defer_while_in_flight: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None
    #: Deadline of each shadow and judge call.
    timeout_s: Annotated[float, Field(gt=0, le=3600, strict=True)] = 120.0
    judge_max_tokens: Annotated[int, Field(ge=1, le=4096, strict=True)] = 16
    max_request_chars: Annotated[int, Field(ge=100, le=1_000_000, strict=True)] = 8000
    max_answer_chars: Annotated[int, Field(ge=100, le=1_000_000, strict=True)] = 4000
    #: Keep the text the classifier read of evaluated requests in the ledger (opt-in).
    store_prompts: bool = False

    _task_types = field_validator("task_types")(classmethod(lambda cls, v: _known_task_types(v)))

    @property
    def samples_anything(self) -> bool:
        shares = [self.share, *self.task_types.values()]
        for tenant in self.tenants.values():
            shares += [tenant.share or 0.0, *tenant.task_types.values()]
        return any(share > 0 for share in shares)

    @model_validator(mode="after")
    def _bounded_when_on(self) -> EvaluationConfig:
        if self.samples_anything:
            missing = [
                name for name in ("judge_target", "daily_budget_usd") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"shadow evaluation samples requests, so it needs {' and '.join(missing)}"
                )
        return self


class RouterConfig(_Strict):
    classifier: ClassifierConfig
    backends: dict[str, BackendConfig]
    #: The model registry: logical target name -> backend + model + prices.
    targets: dict[str, TargetConfig]
    routing: RoutingConfig
    #: Tenant name -> keys and budget. Empty: one dev tenant, no authentication.
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    ledger: LedgerConfig = LedgerConfig()
    #: SHA-256 hex digests of operator keys: cost reports over every tenant (no routing).
    admin_api_key_sha256: list[str] = Field(default_factory=list)
    #: Shadow evaluation and the judge (off by default).
    evaluation: EvaluationConfig = EvaluationConfig()

    _admin_digests = field_validator("admin_api_key_sha256")(
        classmethod(lambda cls, v: TenantConfig._hex_digests(v))  # type: ignore[misc]
    )

    @model_validator(mode="after")
    def _references(self) -> RouterConfig:
        problems: list[str] = []
        for name, target in self.targets.items():
            if target.backend not in self.backends:
                problems.append(f"targets.{name}.backend: unknown backend {target.backend!r}")

        def check(where: str, name: str | None, kind: TargetKind | None = None) -> None:
            if name is None:
                return
            if name not in self.targets:
                problems.append(f"{where}: unknown target {name!r}")
                return
            backend = self.backends.get(self.targets[name].backend)
            if kind is not None and backend is not None and backend.kind is not kind:
                problems.append(f"{where}: target {name!r} is {backend.kind.value}, not {kind}")

        r = self.routing
        check("routing.local_target", r.local_target, TargetKind.LOCAL)
        check("routing.frontier_target", r.frontier_target, TargetKind.FRONTIER)
        check("routing.default_target", r.default_target)
        check("routing.baseline_target", r.baseline_target, TargetKind.FRONTIER)
        for source, chain in r.fallbacks.items():
            check(f"routing.fallbacks key {source!r}", source)
            for i, name in enumerate(chain):
                check(f"routing.fallbacks.{source}[{i}]", name)
        for task, rule in r.task_rules.items():
            check(f"routing.task_rules.{task}.target", rule.target)
            check(f"routing.task_rules.{task}.local_target", rule.local_target, TargetKind.LOCAL)
            check(
                f"routing.task_rules.{task}.frontier_target",
                rule.frontier_target,
                TargetKind.FRONTIER,
            )
        check("evaluation.judge_target", self.evaluation.judge_target)
        for tenant in self.evaluation.tenants:
            if self.tenants and tenant not in self.tenants:
                problems.append(f"evaluation.tenants: unknown tenant {tenant!r}")
        seen: dict[str, str] = {}
        for tenant, cfg in self.tenants.items():
            for digest in cfg.api_key_sha256:
                if digest in seen and seen[digest] != tenant:
                    problems.append(
                        f"tenants.{tenant}: an API key is also listed for tenant {seen[digest]!r}"
                    )
                seen[digest] = tenant
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def target_kind(self, target: str) -> TargetKind:
        return self.backends[self.targets[target].backend].kind

    @property
    def baseline_target(self) -> str:
        return self.routing.baseline_target or self.routing.frontier_target


def hash_api_key(key: str) -> str:
    """The form an API key is stored in: its SHA-256 hex digest."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _format_errors(source: str, error: ValidationError) -> str:
    lines = [f"invalid router configuration {source}: {error.error_count()} problem(s)"]
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  - {where}: {item['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<memory>") -> RouterConfig:
    """Validate already-parsed YAML; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"invalid router configuration {source}: the top level must be a mapping")
    try:
        return RouterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None


def load_config(path: str | Path) -> RouterConfig:
    """Read and validate the YAML file at `path`; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read router configuration {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"router configuration {path} is not valid YAML: {exc}") from None
    return parse_config(data, str(path))
