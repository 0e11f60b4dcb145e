"""Settings every service shares, read once from the environment and validated strictly.

Each service subclasses `ServiceSettings` with its own `SWITCHYARD_<SERVICE>_` prefix and knobs.
`load_settings` turns pydantic's validation errors into one `SettingsError` that lists every
problem with the environment variable to fix, so start-up fails once with the whole list.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from switchyard.runtime.errors import SwitchyardError

__all__ = ["LogLevel", "ServiceSettings", "SettingsError", "load_settings"]

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
