"""Settings every service shares, read once from the environment and validated strictly.

Each service subclasses `ServiceSettings` with its own `SWITCHYARD_<SERVICE>_` prefix and knobs.
`load_settings` turns pydantic's validation errors into one `SettingsError` that lists every
problem with the environment variable to fix, so start-up fails once with the whole list.
`settings_help` / `service_help` render the same fields (variable, default, meaning) for a console
script's `--help`: one implementation for every service.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchyard.runtime.errors import SwitchyardError

__all__ = [
    "CLIENT_INSTALL_HINT",
    "LogLevel",
    "ServiceSettings",
    "SettingsError",
    "load_settings",
    "service_help",
    "settings_help",
]

#: How to get the `switchyard` command where only the services are installed.
CLIENT_INSTALL_HINT = (
    "The `switchyard` command (ask, route, costs, hash-key) comes with the Python client:\n"
    "  pip install 'switchyard-client[cli]'"
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

S = TypeVar("S", bound="ServiceSettings")


class SettingsError(SwitchyardError):
    """Settings are missing or invalid; the message lists every problem."""

    def __init__(self, service: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid settings for {service} ({len(problems)} problem(s)):\n{lines}")
        self.problems = problems


class ServiceSettings(BaseSettings):
    """Knobs every service has. Subclasses set `model_config` with their env prefix."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, validate_default=True)

    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 0

    host: str = Field("0.0.0.0", description="Address to bind.")
    port: int = Field(0, ge=0, le=65535, description="Port to bind (0: the service's default).")
    grace_period_s: float = Field(
        10.0, gt=0, le=600, description="On SIGTERM, how long in-flight calls may take to finish."
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024, description="Largest message accepted."
    )
    log_level: LogLevel = Field("INFO", description="Lowest level logged.")
    log_prompts: bool = Field(False, description="Log prompt and answer text (off: never).")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="Calls served at once; more are refused RESOURCE_EXHAUSTED."
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="Event loop to serve on: uvloop (less CPU per streamed chunk; the default "
        "where it is installed) or the standard library's asyncio loop.",
    )

    @property
    def bind_port(self) -> int:
        return self.port or self.default_port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.bind_port}"


def _env_name(cls: type[ServiceSettings], loc: tuple[Any, ...]) -> str:
    prefix = cls.model_config.get("env_prefix", "") or ""
    if not loc:
        return prefix.rstrip("_") or cls.__name__
    return f"{prefix}{str(loc[0]).upper()}" + "".join(f".{p}" for p in loc[1:])


_SECRET_WORDS = ("key", "secret", "token", "password", "dsn", "url")


def _unknown_variables(cls: type[ServiceSettings]) -> list[str]:
    prefix = (cls.model_config.get("env_prefix", "") or "").upper()
    if not prefix:
        return []
    known = {f"{prefix}{name.upper()}" for name in cls.model_fields}
    return [
        f"{name}: unknown setting (known: {', '.join(sorted(known))})"
        for name in sorted(os.environ)
        if name.upper().startswith(prefix) and name.upper() not in known
    ]


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Read `cls` from the environment (overrides win) or raise `SettingsError` with all problems.

    Unknown `SWITCHYARD_<SERVICE>_*` variables are problems too: a typo must not silently leave
    a default in force. Values of fields that may hold secrets are never echoed.
    """
    problems = _unknown_variables(cls)
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            name = _env_name(cls, loc)
            value = err.get("input")
            secret = any(w in str(loc[0]).lower() for w in _SECRET_WORDS) if loc else True
            plain = not (secret or isinstance(value, dict | list) or value is None)
            shown = f" (got {value!r})" if plain else ""
            problems.append(f"{name}: {err['msg']}{shown}")
        raise SettingsError(cls.service_name, problems) from None
    if problems:
        raise SettingsError(cls.service_name, problems)
    return settings


def _shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return repr(str(value)) if str(value) == "" else str(value)
    return str(value)


def settings_help(cls: type[ServiceSettings], *, width: int = 100) -> str:
    """Every setting of `cls`: its environment variable, default and meaning, one block each."""
    prefix = (cls.model_config.get("env_prefix", "") or "").upper()
    blocks = []
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = _shown_default(default)
        if name == "port" and cls.default_port:
            shown = f"{shown} (binds {cls.default_port})"
        head = f"  {prefix}{name.upper()}  (default: {shown})"
        body = textwrap.fill(
            field.description or "", width=width, initial_indent=" " * 6, subsequent_indent=" " * 6
        )
        blocks.append(f"{head}\n{body}" if body.strip() else head)
    return "\n".join(blocks)


def service_help(
    script: str,
    cls: type[ServiceSettings],
    *,
    summary: str = "",
    commands: Mapping[str, str] | None = None,
) -> str:
    """A service console script's `--help`: what it does, its commands, every setting."""

    def para(text: str) -> str:
        return textwrap.fill(text, width=100)

    lines = [f"usage: {script} [--help]"]
    for usage in commands or {}:
        lines.append(f"       {script} {usage}")
    if summary:
        lines += ["", para(summary)]
    if commands:
        lines += ["", "commands:"]
        lines += [f"  {usage}\n      {what}" for usage, what in commands.items()]
    lines += [
        "",
        para(
            f"With no arguments {script} serves until SIGTERM / SIGINT. Its settings are "
            "environment variables, read once at start (every problem is reported at once):"
        ),
        "",
        settings_help(cls),
        "",
        para(
            "Telemetry: OTEL_EXPORTER_OTLP_ENDPOINT (for example http://localhost:4317) exports "
            "traces and metrics over OTLP/gRPC; unset, nothing is exported."
        ),
        "",
        CLIENT_INSTALL_HINT,
    ]
    return "\n".join(lines)
