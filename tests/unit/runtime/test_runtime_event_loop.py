"""The `event_loop` setting picks the loop every service serves on."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from switchyard.runtime.server import event_loop_factory
from switchyard.runtime.settings import ServiceSettings, SettingsError, load_settings


class LoopSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHYARD_LOOPTEST_", extra="forbid", frozen=True
    )
    extra_knob: int = Field(1)


def test_uvloop_is_the_default_and_asyncio_can_be_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(LoopSettings).event_loop == "uvloop"
    assert event_loop_factory("uvloop") is uvloop.new_event_loop
    loop = event_loop_factory("uvloop")()  # type: ignore[misc]
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    monkeypatch.setenv("SWITCHYARD_LOOPTEST_EVENT_LOOP", "asyncio")
    assert load_settings(LoopSettings).event_loop == "asyncio"
    assert event_loop_factory("asyncio") is None
    with asyncio.Runner(loop_factory=event_loop_factory("asyncio")) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)


def test_an_unknown_event_loop_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHYARD_LOOPTEST_EVENT_LOOP", "trio")
    with pytest.raises(SettingsError) as error:
        load_settings(LoopSettings)
    assert "SWITCHYARD_LOOPTEST_EVENT_LOOP" in error.value.message
