"""System checks: the service's refresh tokens stay on the server."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def session_storage(app_configs: Any, **kwargs: Any) -> list[Error]:
    """The Django session holds refresh tokens: it must live on the server,
    behind a cookie that scripts cannot read."""
    errors = []
    if settings.SESSION_ENGINE == "django.contrib.sessions.backends.signed_cookies":
        errors.append(
            Error(
                "SESSION_ENGINE keeps sessions in a cookie, and with them the account "
                "service's refresh tokens.",
                hint="Use a server-side engine (db, cache, cached_db, file).",
                id="ecoms_accounts.E001",
            )
        )
    if not settings.SESSION_COOKIE_HTTPONLY:
        errors.append(
            Error(
                "SESSION_COOKIE_HTTPONLY is off: scripts could read the session cookie "
                "and, with it, act with the shopper's session.",
                id="ecoms_accounts.E002",
            )
        )
    return errors
