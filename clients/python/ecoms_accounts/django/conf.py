"""``settings.ECOMS_ACCOUNTS``, read once, and the client and verifier built
from it.

=============  ==============================================================
key            meaning
=============  ==============================================================
TARGET         the service's gRPC address, ``host:port`` (required)
API_KEY        this project's API key (``sessions:write`` to sign in, plus
               ``accounts:register`` for the registration view...)
TLS            False (default), True (system roots) or a
               ``grpc.ChannelCredentials``
TIMEOUT        seconds per call (10)
JWKS_URL       the sidecar's ``/.well-known/jwks.json`` (for access tokens)
AUDIENCE       the service's ACCESS_TOKEN_AUDIENCE (default ``ecoms``)
ISSUER         the service's ACCESS_TOKEN_ISSUER (its PUBLIC_BASE_URL)
LEEWAY         clock skew allowed on access tokens, seconds (5)
=============  ==============================================================

The client and the verifier are made once per process and shared (both are
thread-safe); a change of the setting (``override_settings`` in tests)
makes new ones.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..client import AccountClient
from ..tokens import AccessTokenVerifier

__all__ = ["account_settings", "get_client", "get_verifier"]

_lock = threading.Lock()
_client: AccountClient | None = None
_verifier: AccessTokenVerifier | None = None


def account_settings() -> dict[str, Any]:
    """``settings.ECOMS_ACCOUNTS``, checked."""
    configured = getattr(settings, "ECOMS_ACCOUNTS", None)
    if not isinstance(configured, dict) or not configured.get("TARGET"):
        raise ImproperlyConfigured(
            'ECOMS_ACCOUNTS must be a dict with at least "TARGET" (the service\'s host:port)'
        )
    return configured


def get_client() -> AccountClient:
    """The project's AccountClient."""
    global _client
    with _lock:
        if _client is None:
            conf = account_settings()
            _client = AccountClient(
                conf["TARGET"],
                api_key=conf.get("API_KEY"),
                tls=conf.get("TLS") or None,
                timeout=conf.get("TIMEOUT", 10.0),
            )
        return _client


def get_verifier() -> AccessTokenVerifier:
    """The project's AccessTokenVerifier."""
    global _verifier
    with _lock:
        if _verifier is None:
            conf = account_settings()
            missing = [key for key in ("JWKS_URL", "ISSUER") if not conf.get(key)]
            if missing:
                raise ImproperlyConfigured(
                    f"ECOMS_ACCOUNTS lacks {', '.join(missing)}, which access tokens need"
                )
            _verifier = AccessTokenVerifier(
                conf["JWKS_URL"],
                audience=conf.get("AUDIENCE", "ecoms"),
                issuer=conf["ISSUER"],
                leeway=conf.get("LEEWAY", 5.0),
            )
        return _verifier


def _forget(*, setting: str, **kwargs: Any) -> None:
    global _client, _verifier
    if setting != "ECOMS_ACCOUNTS":
        return
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        _verifier = None


setting_changed.connect(_forget)
