"""`LinearPool` makes the same pool decisions as httpcore's own (quadratic) pass: a
differential test over random pool states."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import httpcore
import pytest

from switchyard.frontier_proxy.transport import LinearPool


@dataclass(eq=False)
class FakeConnection:
    name: str
    origin: str
    closed: bool = False
    expired: bool = False
    idle: bool = False
    available: bool = False

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: str) -> bool:
        return origin == self.origin


@dataclass
class FakeUrl:
    origin: str


@dataclass
class FakeRequest:
    url: FakeUrl


@dataclass(eq=False)
class FakePoolRequest:
    request: FakeRequest
    queued: bool
    assigned: list[str] = field(default_factory=list)

    def is_queued(self) -> bool:
        return self.queued and not self.assigned

    def assign_to_connection(self, connection: Any) -> None:
        self.assigned.append(connection.name)


def state(seed: int) -> tuple[list[FakeConnection], list[FakePoolRequest], int, int]:
    rng = random.Random(seed)
    origins = ["a", "b"]
    connections = []
    for i in range(rng.randint(0, 12)):
        idle = rng.random() < 0.5
        connections.append(
            FakeConnection(
                f"c{i}",
                rng.choice(origins),
                closed=rng.random() < 0.15,
                expired=rng.random() < 0.15,
                idle=idle,
                available=idle or rng.random() < 0.1,
            )
        )
    requests = [
        FakePoolRequest(FakeRequest(FakeUrl(rng.choice(origins))), queued=rng.random() < 0.7)
        for _ in range(rng.randint(0, 6))
    ]
    return connections, requests, rng.randint(1, 14), rng.randint(0, 14)


def run(pool_cls: type[httpcore.AsyncConnectionPool], seed: int) -> tuple[Any, ...]:
    connections, requests, max_connections, max_keepalive = state(seed)
    pool = pool_cls(max_connections=max_connections, max_keepalive_connections=max_keepalive)
    pool._connections = list(connections)  # type: ignore[assignment]
    pool._requests = list(requests)  # type: ignore[assignment]
    created: list[str] = []

    def create_connection(origin: Any) -> Any:
        created.append(f"new{len(created)}")
        return FakeConnection(created[-1], origin)

    pool.create_connection = create_connection  # type: ignore[method-assign]
    closing = pool._assign_requests_to_connections()
    return (
        [c.name for c in pool._connections],  # type: ignore[attr-defined]
        [c.name for c in closing],  # type: ignore[attr-defined]
        [r.assigned for r in requests],
        created,
    )


@pytest.mark.parametrize("seed", range(300))
def test_linear_pool_decides_like_httpcore(seed: int) -> None:
    assert run(LinearPool, seed) == run(httpcore.AsyncConnectionPool, seed)
