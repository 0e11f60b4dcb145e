"""The peer of a call as its SERVER span names it (`network.peer.address` / `.port`)."""

from __future__ import annotations

import pytest

from switchyard.runtime import attributes as attr
from switchyard.runtime.interceptors import _peer_attributes


@pytest.mark.parametrize(
    ("peer", "address", "port"),
    [
        ("ipv4:127.0.0.1:57284", "127.0.0.1", 57284),
        ("ipv6:[::1]:57284", "::1", 57284),
        ("ipv6:%5B2001:db8::7%5D:443", "2001:db8::7", 443),
        ("ipv4:10.2.1.1:5000,127.0.0.1:6000", "10.2.1.1", 5000),
    ],
)
def test_an_ip_peer_gives_its_address_and_port(peer: str, address: str, port: int) -> None:
    assert _peer_attributes(peer) == {
        attr.NETWORK_PEER_ADDRESS: address,
        attr.NETWORK_PEER_PORT: port,
    }


@pytest.mark.parametrize("peer", ["unix:/tmp/switchyard.sock", "", "ipv4:", "ipv4:10.0.0.1:x"])
def test_anything_else_gives_no_peer_attributes(peer: str) -> None:
    assert _peer_attributes(peer) == {}
