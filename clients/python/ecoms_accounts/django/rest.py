"""Django REST framework: authentication by the service's access tokens,
and registration through the service.

- :class:`AccessTokenAuthentication`: ``Authorization: Bearer <access
  token>``, verified offline; ``request.user`` is the account's local user
  (made on first sight) and ``request.auth`` the token's claims.
- :func:`registration_response` and ``RegistrationView`` (from
  :mod:`ecoms_accounts.django.views`, also importable from here): Register,
  answered the way a DRF serializer would: 201 with the account, or 400
  with the service's messages per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timezone
from typing import Any

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework.response import Response

from .._proto.account.v1 import account_pb2 as pb
from ..client import AccountClient
from ..errors import AlreadyExists, RateLimited, TokenInvalid, Unavailable, ValidationError
from .conf import get_verifier
from .users import user_for_account

__all__ = [
    "AccessTokenAuthentication",
    "ServiceUnavailable",
    "account_data",
    "registration_response",
]


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The account service is unavailable; try again shortly."
    default_code = "service_unavailable"


class AccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>``, verified offline with
    ECOMS_ACCOUNTS' JWKS_URL, AUDIENCE and ISSUER. Requests without a bearer
    token are left to the other authentication classes; a token that does
    not verify is refused with 401."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header: expected `Bearer <access token>`."
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid access token.") from None
        try:
            claims = get_verifier().verify(token)
        except TokenInvalid as error:
            raise exceptions.AuthenticationFailed(error.message) from error
        except Unavailable as error:
            raise ServiceUnavailable() from error
        user = user_for_account(claims["sub"])
        if not getattr(user, "is_active", True):
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, claims

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def account_data(account: pb.Account) -> dict[str, Any]:
    """An account as JSON data: every field, timestamps in ISO 8601."""
    data: dict[str, Any] = {}
    for field in account.DESCRIPTOR.fields:
        value = getattr(account, field.name)
        if field.message_type is not None:
            value = (
                value.ToDatetime(tzinfo=timezone.utc).isoformat()
                if account.HasField(field.name)
                else None
            )
        data[field.name] = value
    return data


_TRUE = {"true", "on", "1", "yes"}


def _register_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """RegisterRequest's fields from request data (JSON or a form): strings
    as given, term_and_condition as a form's checkbox; other keys ignored."""
    fields: dict[str, Any] = {}
    for field in pb.RegisterRequest.DESCRIPTOR.fields:
        value = data.get(field.name)
        if field.name == "term_and_condition":
            fields[field.name] = value is True or str(value).strip().lower() in _TRUE
        else:
            fields[field.name] = "" if value is None else str(value)
    return fields


def registration_response(client: AccountClient, data: Mapping[str, Any]) -> Response:
    """Registers the account ``data`` describes: 201 with the account; 400
    with ``{field: [messages]}`` as the service words them (an address
    already registered: ``{"email": ["user with this email already
    exists."]}``); 429 with Retry-After when rate limited."""
    try:
        answer = client.register(**_register_fields(data))
    except (ValidationError, AlreadyExists) as error:
        return Response(error.errors, status=status.HTTP_400_BAD_REQUEST)
    except RateLimited as error:
        raise exceptions.Throttled(wait=error.retry_after) from error
    except Unavailable as error:
        raise ServiceUnavailable() from error
    return Response(account_data(answer.account), status=status.HTTP_201_CREATED)


def __getattr__(name: str) -> Any:
    # RegistrationView is an APIView, and rest_framework.views imports the
    # DEFAULT_AUTHENTICATION_CLASSES, which name this module: importing
    # rest_framework.views here would be circular. It lives in .views.
    if name == "RegistrationView":
        from .views import RegistrationView

        return RegistrationView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
