from __future__ import annotations

import pytest
from router_fixtures import config

from switchyard.router.tenancy import DEV_TENANT, authenticate, bearer_token
from switchyard.runtime.errors import Unauthenticated

CFG = config()


def test_bearer_token_parsing() -> None:
    assert bearer_token([("x", "y")]) is None
    assert bearer_token([("Authorization", "Bearer abc ")]) == "abc"
    assert bearer_token([("authorization", b"bearer abc")]) == "abc"
    with pytest.raises(Unauthenticated, match="Bearer"):
        bearer_token([("authorization", "Basic abc")])
    with pytest.raises(Unauthenticated):
        bearer_token([("authorization", "Bearer ")])


def test_authenticate_matches_hashed_keys() -> None:
    assert authenticate(CFG, [("authorization", "Bearer acme-key")]) == "acme"
    assert authenticate(CFG, [("authorization", "Bearer globex-key")]) == "globex"


def test_wrong_or_missing_key_is_unauthenticated_and_not_echoed() -> None:
    with pytest.raises(Unauthenticated) as err:
        authenticate(CFG, [("authorization", "Bearer sk-wrong-secret")])
    assert "sk-wrong-secret" not in str(err.value)
    with pytest.raises(Unauthenticated, match="missing"):
        authenticate(CFG, [])


def test_no_tenants_means_dev_tenant() -> None:
    assert authenticate(config(tenants={}), None) == DEV_TENANT
