"""Who is calling: API keys from `authorization: Bearer <key>` metadata, matched by SHA-256."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from switchyard.router.config import RouterConfig, hash_api_key
from switchyard.runtime.errors import Unauthenticated

__all__ = ["DEV_TENANT", "authenticate", "bearer_token", "is_admin"]

#: The tenant every request belongs to when the configuration lists no tenants.
DEV_TENANT = "dev"


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The key of the `authorization: Bearer <key>` metadata entry, or None when absent."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization metadata must be `Bearer <api key>`")
        return token.strip()
    return None


def authenticate(config: RouterConfig, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The caller's tenant. With no tenants configured, every caller is the dev tenant."""
    if not config.tenants:
        return DEV_TENANT
    token = bearer_token(metadata)
    if token is None:
        raise Unauthenticated("missing `authorization: Bearer <api key>` metadata")
    digest = hash_api_key(token)
    for tenant, cfg in config.tenants.items():
        for stored in cfg.api_key_sha256:
            if hmac.compare_digest(stored, digest):
                return tenant
    raise Unauthenticated("unknown API key")


def is_admin(config: RouterConfig, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
    """True when the caller's key is an operator key (cost reports over every tenant)."""
    if not config.admin_api_key_sha256:
        return False
    token = bearer_token(metadata)
    if token is None:
        return False
    digest = hash_api_key(token)
    return any(hmac.compare_digest(stored, digest) for stored in config.admin_api_key_sha256)
