"""The service's session inside the Django session.

A sign-in through :class:`~ecoms_accounts.django.backends.AccountServiceBackend`
keeps the refresh token, the session id and the current access token in
the Django session, that is on the server (the session engine must not be
``signed_cookies``, which a system check enforces): the browser holds only
Django's session cookie. They are written when ``login()`` has settled the
session (the ``user_logged_in`` signal), since ``login()`` may flush it.

``logout()`` (Django's, the admin's) ends the service's session too, by the
``user_logged_out`` signal; :func:`sign_out` does the same and reports a
failure instead of logging it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.http import HttpRequest

from .._proto.account.v1 import account_pb2 as pb
from ..errors import AccountServiceError, TokenInvalid
from .conf import get_client

__all__ = ["SESSION_KEY", "ServiceSession", "access_token", "service_session", "sign_out"]

logger = logging.getLogger(__name__)

#: The Django session key under which the service's session is kept.
SESSION_KEY = "ecoms_accounts"
#: An access token this close to its expiry is refreshed first, so that it
#: does not expire on its way to the service that takes it.
REFRESH_MARGIN = 30.0


@dataclass(frozen=True)
class ServiceSession:
    """A session at the account service, as kept in the Django session."""

    account_id: str
    session_id: str
    refresh_token: str
    access_token: str
    #: Unix time.
    access_token_expires_at: float

    @classmethod
    def from_answer(cls, account_id: str, session: pb.Session, tokens: pb.Tokens) -> ServiceSession:
        """From a SignIn, CompleteSignIn or RefreshSession answer."""
        return cls(
            account_id=account_id,
            session_id=session.id,
            refresh_token=tokens.refresh_token,
            access_token=tokens.access_token,
            access_token_expires_at=tokens.access_token_expires_at.seconds
            + tokens.access_token_expires_at.nanos / 1e9,
        )


# The attribute of a freshly authenticated user that carries its session to
# the user_logged_in receiver.
_PENDING = "_ecoms_accounts_session"


def attach(user: Any, session: ServiceSession) -> None:
    """Marks ``user`` as signed in with ``session``, for login() to keep."""
    setattr(user, _PENDING, session)


def service_session(request: HttpRequest) -> ServiceSession | None:
    """The service's session of the signed-in shopper, if any."""
    stored = request.session.get(SESSION_KEY)
    return ServiceSession(**stored) if isinstance(stored, dict) else None


def access_token(request: HttpRequest) -> str | None:
    """A current access token of the signed-in shopper (to call other
    services with), refreshed with the stored refresh token when it is
    about to expire. None without a service session; when the service has
    ended the session (a sign-out elsewhere, a password change), the
    shopper is signed out here too and None is answered. Two requests that
    refresh at once both succeed: within REFRESH_TOKEN_REUSE_INTERVAL the
    service answers both with the same new refresh token."""
    session = service_session(request)
    if session is None:
        return None
    if session.access_token_expires_at - time.time() > REFRESH_MARGIN:
        return session.access_token
    try:
        answer = get_client().refresh_session(refresh_token=session.refresh_token)
    except TokenInvalid:
        request.session.pop(SESSION_KEY, None)
        logout(request)
        return None
    renewed = ServiceSession.from_answer(session.account_id, answer.session, answer.tokens)
    request.session[SESSION_KEY] = asdict(renewed)
    return renewed.access_token


def sign_out(request: HttpRequest) -> None:
    """Ends the shopper's session at the service (SignOut with the stored
    refresh token), then signs the shopper out of Django. The Django
    sign-out happens whatever the service answers; a failure to reach it is
    raised afterwards."""
    session = service_session(request)
    request.session.pop(SESSION_KEY, None)
    try:
        if session is not None:
            get_client().sign_out(refresh_token=session.refresh_token)
    finally:
        logout(request)


def _keep_session(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    session = getattr(user, _PENDING, None)
    if session is not None and request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = asdict(session)
        delattr(user, _PENDING)


def _end_session(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    session = service_session(request)
    if session is None:
        return
    try:
        get_client().sign_out(refresh_token=session.refresh_token)
    except AccountServiceError as error:
        # Signing out of Django must not fail because the service is away;
        # the session there ends by itself (SESSION_IDLE_TIMEOUT).
        logger.warning(
            "could not end session %s at the account service: %s", session.session_id, error
        )


user_logged_in.connect(_keep_session, dispatch_uid="ecoms_accounts.keep_session")
user_logged_out.connect(_end_session, dispatch_uid="ecoms_accounts.end_session")
