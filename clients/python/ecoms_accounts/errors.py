"""The exceptions of the account service, and the one place where a refused
call becomes one: :func:`from_rpc_error`.

The class comes from the ``google.rpc.ErrorInfo`` reason the service sends
in ``grpc-status-details-bin`` (domain ``account.v1``) and, without a reason
this module knows, from the status code. Every reason the service sends has
an entry in :data:`REASONS`:

==============================  ==========================================
class                           reasons (or status code)
==============================  ==========================================
:class:`ValidationError`        INVALID_ARGUMENT with a BadRequest, or none
:class:`AlreadyExists`          ALREADY_EXISTS
:class:`NotFound`               NOT_FOUND
:class:`InvalidCredentials`     INVALID_CREDENTIALS
:class:`EmailNotVerified`       EMAIL_NOT_VERIFIED
:class:`LoginLocked`            LOGIN_LOCKED
:class:`SecondFactorRequired`   SECOND_FACTOR_REQUIRED
:class:`TokenInvalid`           TOKEN_MISSING, TOKEN_INVALID,
                                REFRESH_TOKEN_INVALID, REFRESH_TOKEN_REUSED,
                                ACCESS_TOKEN_INVALID, SESSION_REVOKED,
                                CHALLENGE_INVALID
:class:`TokenExpired`           TOKEN_EXPIRED, ACCESS_TOKEN_EXPIRED,
                                SESSION_EXPIRED, CHALLENGE_EXPIRED
:class:`CodeInvalid`            CODE_INVALID, SECOND_FACTOR_INVALID
:class:`CodeExpired`            CODE_EXPIRED, CODE_EXHAUSTED
:class:`FailedPrecondition`     SECOND_FACTOR_NOT_STARTED,
                                SECOND_FACTOR_ALREADY_ENABLED,
                                SECOND_FACTOR_NOT_ENABLED (FAILED_PRECONDITION)
:class:`CursorExpired`          CURSOR_EXPIRED
:class:`RateLimited`            QUOTA_EXCEEDED, STREAM_LIMIT
                                (RESOURCE_EXHAUSTED: cooldowns, rate limits,
                                a full hashing or image queue)
:class:`PermissionDenied`       SCOPE_MISSING (PERMISSION_DENIED)
:class:`Unauthenticated`        API_KEY_MISSING, API_KEY_INVALID
                                (UNAUTHENTICATED)
:class:`Unavailable`            (UNAVAILABLE)
:class:`DeadlineExceeded`       (DEADLINE_EXCEEDED: the client's timeout)
:class:`AccountServiceError`    anything else (INTERNAL, ...)
==============================  ==========================================

Every token that means "this session or link no longer holds, start again"
is a :class:`TokenInvalid`; those that merely ran out of time are its
subclass :class:`TokenExpired`, so ``except TokenInvalid`` catches both, as
PyJWT's ``InvalidTokenError`` catches ``ExpiredSignatureError``. A reused
refresh token is invalid, not expired: the service ended its session.
:class:`~ecoms_accounts.AccessTokenVerifier` raises the same two classes
for a token it refuses offline (reasons ACCESS_TOKEN_INVALID and
ACCESS_TOKEN_EXPIRED), as VerifyAccessToken does online.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AccountServiceError",
    "AlreadyExists",
    "CodeExpired",
    "CodeInvalid",
    "CursorExpired",
    "DeadlineExceeded",
    "Details",
    "EmailNotVerified",
    "FailedPrecondition",
    "InvalidCredentials",
    "LoginLocked",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "SecondFactorRequired",
    "TokenExpired",
    "TokenInvalid",
    "Unauthenticated",
    "Unavailable",
    "ValidationError",
    "from_rpc_error",
]

#: The ErrorInfo domain of the service's errors.
ERROR_DOMAIN = "account.v1"
#: The trailing metadata key that carries a serialized ``google.rpc.Status``.
DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class Details:
    """What the service said beyond the status code and message."""

    #: ``google.rpc.ErrorInfo`` reason.
    reason: str | None = None
    #: ``google.rpc.ErrorInfo`` metadata (``scope``, ``challenge``, ``limit``).
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: ``google.rpc.BadRequest`` field violations, as field -> messages.
    field_errors: Mapping[str, list[str]] = field(default_factory=dict)
    #: ``google.rpc.RetryInfo`` delay, in seconds.
    retry_after: float | None = None


def decode_details(trailing_metadata: Iterable[tuple[str, Any]] | None) -> Details:
    """The details of the ``google.rpc.Status`` in ``grpc-status-details-bin``;
    empty ones when there is none or it does not decode."""
    raw = next((v for k, v in trailing_metadata or () if k == DETAILS_KEY), None)
    if raw is None:
        return Details()
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return Details()
    reason: str | None = None
    metadata: dict[str, str] = {}
    field_errors: dict[str, list[str]] = {}
    retry_after: float | None = None
    for any_detail in status.details:
        if any_detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            any_detail.Unpack(info)
            reason = info.reason or None
            metadata.update(info.metadata)
        elif any_detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            any_detail.Unpack(bad_request)
            for violation in bad_request.field_violations:
                field_errors.setdefault(violation.field, []).append(violation.description)
        elif any_detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            any_detail.Unpack(retry)
            retry_after = retry.retry_delay.ToTimedelta().total_seconds()
    return Details(reason, metadata, field_errors, retry_after)


class AccountServiceError(Exception):
    """A call the account service, or the way to it, refused."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(message)
        #: The gRPC status code.
        self.code: grpc.StatusCode = code
        #: The status message, written to be shown to shoppers where it
        #: concerns them.
        self.message: str = message
        self.details: Details = details or Details()
        #: The ErrorInfo reason (``"INVALID_CREDENTIALS"``, ...), or None.
        self.reason: str | None = self.details.reason
        #: The ErrorInfo metadata.
        self.metadata: dict[str, str] = dict(self.details.metadata)

    def __str__(self) -> str:
        reason = f" [{self.reason}]" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"


class ValidationError(AccountServiceError):
    """The request broke the service's rules (INVALID_ARGUMENT)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: Field name -> messages, in Django REST framework's shape: what a
        #: 400 answer carries. An INVALID_ARGUMENT without field violations
        #: (a malformed page token or cursor) is under ``non_field_errors``.
        self.errors: dict[str, list[str]] = {
            name: list(messages) for name, messages in self.details.field_errors.items()
        } or {"non_field_errors": [message]}


class AlreadyExists(AccountServiceError):
    """The e-mail address already belongs to an account (ALREADY_EXISTS)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: ``{"email": ["user with this email already exists."]}``, as the
        #: service sends it.
        self.errors: dict[str, list[str]] = {
            name: list(messages) for name, messages in self.details.field_errors.items()
        } or {"non_field_errors": [message]}


class NotFound(AccountServiceError):
    """No such account, or no such session of it (NOT_FOUND)."""


class InvalidCredentials(AccountServiceError):
    """A wrong password, or an address without an account: the service
    does not say which (INVALID_CREDENTIALS)."""


class EmailNotVerified(AccountServiceError):
    """The password was right, but the address was never confirmed
    (EMAIL_NOT_VERIFIED)."""


class LoginLocked(AccountServiceError):
    """The address is locked out after too many failed sign-ins (LOGIN_LOCKED)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: Seconds until the lockout ends.
        self.retry_after: float | None = self.details.retry_after


class SecondFactorRequired(AccountServiceError):
    """The password was right and two-step sign-in is on: finish with
    ``complete_sign_in(challenge=error.challenge, totp_code=...)``
    (SECOND_FACTOR_REQUIRED)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: The challenge CompleteSignIn takes (ErrorInfo metadata ``challenge``).
        self.challenge: str = self.metadata.get("challenge", "")


class TokenInvalid(AccountServiceError):
    """A confirmation, reset or e-mail change token, a refresh or access
    token, or a sign-in challenge that does not hold: malformed, unknown,
    spent, reused or of an ended session. Start again (sign in, ask for a
    new mail)."""


class TokenExpired(TokenInvalid):
    """A token, session or challenge that ran out of time."""


class CodeInvalid(AccountServiceError):
    """A wrong mailed confirmation code, or a wrong authenticator or
    recovery code (CODE_INVALID, SECOND_FACTOR_INVALID)."""


class CodeExpired(CodeInvalid):
    """A mailed confirmation code that expired, or that too many wrong
    tries used up: a new mail brings a new one (CODE_EXPIRED,
    CODE_EXHAUSTED)."""


class FailedPrecondition(AccountServiceError):
    """The account is not in the state the call needs, e.g. two-step
    sign-in already on or not on (FAILED_PRECONDITION)."""


class CursorExpired(AccountServiceError):
    """An event cursor older than the service's retention: resume from the
    oldest retained event instead (CURSOR_EXPIRED)."""


class RateLimited(AccountServiceError):
    """Too many calls: the caller's quota, a cooldown per address, the rate
    limits, a full queue, or as many event streams as one caller may hold
    (RESOURCE_EXHAUSTED other than a sign-in lockout)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: Seconds to wait before trying again (RetryInfo); None when the
        #: service gave none (STREAM_LIMIT: end a stream first).
        self.retry_after: float | None = self.details.retry_after


class PermissionDenied(AccountServiceError):
    """The API key's caller lacks the scope the call needs (SCOPE_MISSING)."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Details | None = None) -> None:
        super().__init__(code, message, details)
        #: The scope the call needs (``"accounts:register"``, ...).
        self.scope: str | None = self.metadata.get("scope")


class Unauthenticated(AccountServiceError):
    """The calling service is not known: no API key, or one nobody holds
    (API_KEY_MISSING, API_KEY_INVALID). Shoppers' wrong passwords are
    :class:`InvalidCredentials`, never this."""


class Unavailable(AccountServiceError):
    """The service, its database or its media store cannot be reached now;
    try again shortly (UNAVAILABLE)."""


class DeadlineExceeded(AccountServiceError):
    """No answer within the client's timeout. The call may still have taken
    effect (DEADLINE_EXCEEDED)."""


#: The class for each ErrorInfo reason the service sends.
REASONS: dict[str, type[AccountServiceError]] = {
    "INVALID_CREDENTIALS": InvalidCredentials,
    "EMAIL_NOT_VERIFIED": EmailNotVerified,
    "LOGIN_LOCKED": LoginLocked,
    "SECOND_FACTOR_REQUIRED": SecondFactorRequired,
    "TOKEN_MISSING": TokenInvalid,
    "TOKEN_INVALID": TokenInvalid,
    "TOKEN_EXPIRED": TokenExpired,
    "REFRESH_TOKEN_INVALID": TokenInvalid,
    "REFRESH_TOKEN_REUSED": TokenInvalid,
    "SESSION_REVOKED": TokenInvalid,
    "SESSION_EXPIRED": TokenExpired,
    "ACCESS_TOKEN_INVALID": TokenInvalid,
    "ACCESS_TOKEN_EXPIRED": TokenExpired,
    "CHALLENGE_INVALID": TokenInvalid,
    "CHALLENGE_EXPIRED": TokenExpired,
    "CODE_INVALID": CodeInvalid,
    "CODE_EXPIRED": CodeExpired,
    "CODE_EXHAUSTED": CodeExpired,
    "SECOND_FACTOR_INVALID": CodeInvalid,
    "SECOND_FACTOR_NOT_STARTED": FailedPrecondition,
    "SECOND_FACTOR_ALREADY_ENABLED": FailedPrecondition,
    "SECOND_FACTOR_NOT_ENABLED": FailedPrecondition,
    "CURSOR_EXPIRED": CursorExpired,
    "QUOTA_EXCEEDED": RateLimited,
    "STREAM_LIMIT": RateLimited,
    "SCOPE_MISSING": PermissionDenied,
    "API_KEY_MISSING": Unauthenticated,
    "API_KEY_INVALID": Unauthenticated,
}

#: The class for a status without a reason this module knows.
CODES: dict[grpc.StatusCode, type[AccountServiceError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: ValidationError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.OUT_OF_RANGE: CursorExpired,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_class(code: grpc.StatusCode, details: Details) -> type[AccountServiceError]:
    """The exception class for a status: by reason, else by code."""
    if details.reason in REASONS:
        return REASONS[details.reason]
    return CODES.get(code, AccountServiceError)


def from_rpc_error(error: grpc.RpcError) -> AccountServiceError:
    """The typed exception for a failed call (a ``grpc.RpcError`` that is
    also a ``grpc.Call``, as grpcio raises them)."""
    call: Any = error
    code: grpc.StatusCode = call.code()
    message: str = call.details() or ""
    details = decode_details(call.trailing_metadata())
    return error_class(code, details)(code, message, details)
