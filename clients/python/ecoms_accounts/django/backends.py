"""AccountServiceBackend: Django authentication by the account service.

``authenticate(request, email=..., password=...)`` (or ``username=``, which
is taken as the address, as the admin's login form sends it) calls SignIn.
On success it answers the account's local user (see
:mod:`ecoms_accounts.django.users`), and ``login()`` then keeps the
service's session in the Django session (:mod:`ecoms_accounts.django.sessions`).

A wrong password or an invalid address answers None, as Django expects of
a backend that does not know the credentials. A right password that cannot
sign in yet (an unconfirmed address, a lockout, two-step sign-in) raises
Django's PermissionDenied, which stops ``authenticate()`` from asking other
backends; the refusal itself, with its ``retry_after`` or ``challenge``, is
left on ``request.ecoms_accounts_error`` for the view to show or to finish
with :func:`complete_sign_in`. An unreachable service raises
:class:`~ecoms_accounts.errors.Unavailable`: it is no wrong password.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .._proto.account.v1 import account_pb2 as pb
from ..errors import (
    EmailNotVerified,
    InvalidCredentials,
    LoginLocked,
    SecondFactorRequired,
    ValidationError,
)
from .conf import get_client
from .sessions import ServiceSession, attach
from .users import user_for_account

__all__ = ["AccountServiceBackend", "complete_sign_in"]

#: The backend's dotted path, as ``login()`` takes it.
BACKEND = "ecoms_accounts.django.backends.AccountServiceBackend"
#: Where a refusal is left for the view.
ERROR_ATTRIBUTE = "ecoms_accounts_error"


def _client_info(request: HttpRequest | None) -> dict[str, str]:
    """What the service stores with the session. REMOTE_ADDR is the peer:
    behind a proxy, a middleware must set it to the shopper's address."""
    if request is None:
        return {}
    return {
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:512],
        "ip_address": request.META.get("REMOTE_ADDR", "") or "",
    }


def _signed_in(answer: pb.SignInResponse) -> Any:
    """The local user of a sign-in, carrying its session to login()."""
    user = user_for_account(answer.account.id, answer.account)
    attach(user, ServiceSession.from_answer(answer.account.id, answer.session, answer.tokens))
    return user


class AccountServiceBackend(BaseBackend):
    """Signs shoppers in with the account service."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        email: str | None = None,
        **kwargs: Any,
    ) -> Any:
        address = email or username
        if not address or not password:
            return None
        try:
            answer = get_client().sign_in(email=address, password=password, **_client_info(request))
        except (InvalidCredentials, ValidationError):
            return None
        except (EmailNotVerified, LoginLocked, SecondFactorRequired) as refusal:
            if request is not None:
                setattr(request, ERROR_ATTRIBUTE, refusal)
            raise PermissionDenied(str(refusal)) from refusal
        user = _signed_in(answer)
        if not getattr(user, "is_active", True):
            # Deactivated here: the session the service just started is
            # of no use.
            get_client().sign_out(refresh_token=answer.tokens.refresh_token)
            return None
        return user

    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if getattr(user, "is_active", True) else None


def complete_sign_in(
    request: HttpRequest,
    challenge: str,
    totp_code: str | None = None,
    recovery_code: str | None = None,
) -> Any:
    """Finishes a sign-in that raised SecondFactorRequired (its
    ``challenge``, from ``request.ecoms_accounts_error``) with an
    authenticator or recovery code, and answers the user to pass to
    ``login(request, user, backend=BACKEND)``. Raises CodeInvalid,
    TokenInvalid (the challenge) and LoginLocked as the client does."""
    answer = get_client().complete_sign_in(
        challenge=challenge,
        totp_code=totp_code,
        recovery_code=recovery_code,
        **_client_info(request),
    )
    return _signed_in(answer)
