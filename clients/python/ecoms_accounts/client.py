"""AccountClient: one method per RPC of ``account.v1.AccountService``.

Each method takes the request's fields as keyword arguments and answers the
response message (``ecoms_accounts.pb``); a refused call raises an exception
of :mod:`ecoms_accounts.errors`. Every call carries the client's timeout, its
API key as ``authorization: Bearer <key>`` and, when OpenTelemetry is
installed and a span is active, that span's ``traceparent``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, BinaryIO, TypeVar, cast

import grpc

from ._proto.account.v1 import account_pb2 as pb
from ._proto.account.v1 import account_pb2_grpc as pb_grpc
from .errors import from_rpc_error

try:
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
except ImportError:  # tracing is optional: without it no traceparent is sent
    _propagate = None  # type: ignore[assignment]
    _trace = None  # type: ignore[assignment]

__all__ = ["AccountClient", "EventStream", "CHUNK_SIZE"]

#: Bytes of an image per SetProfileImage message: the service refuses
#: messages over 64 KiB, and a chunk also carries its framing.
CHUNK_SIZE = 60_000

_Response = TypeVar("_Response")


def _trace_metadata() -> list[tuple[str, str]]:
    """``traceparent`` (and whatever else the configured propagators write)
    for the active span; nothing without OpenTelemetry or a span."""
    if _propagate is None or _trace is None:
        return []
    if not _trace.get_current_span().get_span_context().is_valid:
        return []
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    return [(key.lower(), value) for key, value in carrier.items()]


class EventStream(Iterator[pb.AccountEvent]):
    """The events of a WatchAccountEvents call, as they come. Iterating
    raises the exceptions of :mod:`ecoms_accounts.errors`; :meth:`cancel`
    (or leaving a ``with`` block) ends the stream, after which iteration
    stops."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> pb.AccountEvent:
        try:
            event: pb.AccountEvent = next(self._call)
        except grpc.RpcError as error:
            if self._cancelled and error.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(error) from error
        return event

    def cancel(self) -> None:
        """Ends the stream."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class AccountClient:
    """A connection to the account service.

    ``target`` is ``host:port``. ``tls`` is None (plain text, inside a
    trusted network), True (TLS with the system's roots) or a
    ``grpc.ChannelCredentials`` (``grpc.ssl_channel_credentials(...)`` with a
    CA of your own, or a client certificate for mTLS). ``api_key`` is sent as
    ``authorization: Bearer <key>`` with every call; ``metadata`` is sent as
    well. ``timeout`` is each call's deadline in seconds (None: no
    deadline). The client is thread-safe; close it, or use it as a context
    manager, when done.
    """

    def __init__(
        self,
        target: str,
        api_key: str | None = None,
        tls: bool | grpc.ChannelCredentials | None = None,
        timeout: float | None = 10.0,
        metadata: Iterable[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if tls is None or tls is False:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials() if tls is True else tls
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = pb_grpc.AccountServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout
        self._metadata: list[tuple[str, str]] = [(k.lower(), v) for k, v in metadata]
        if api_key is not None:
            self._metadata.append(("authorization", f"Bearer {api_key}"))

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._channel.close()

    def __enter__(self) -> AccountClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call_metadata(self) -> list[tuple[str, str]]:
        return self._metadata + _trace_metadata()

    def _unary(self, rpc: str, request: Any, response_type: type[_Response]) -> _Response:
        """Calls a unary RPC (or, with an iterator, a client-streaming one);
        every refusal becomes the exception of :mod:`ecoms_accounts.errors`."""
        method: Callable[..., Any] = getattr(self._stub, rpc)
        try:
            response = method(request, timeout=self._timeout, metadata=self._call_metadata())
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
        return cast(_Response, response)

    # -- registration and confirmation --------------------------------------

    def register(
        self,
        *,
        email: str,
        password: str,
        confirm_password: str,
        username: str = "",
        term_and_condition: bool = False,
        address: str = "",
        first_name: str = "",
        last_name: str = "",
        phone_number: str = "",
        created_from: str = "",
        locale: str = "",
    ) -> pb.RegisterResponse:
        """Register: creates an unverified account and mails the confirmation
        link and code.

        Raises ValidationError (``.errors`` lists every violation),
        AlreadyExists for a registered address, RateLimited.
        """
        request = pb.RegisterRequest(
            email=email,
            username=username,
            password=password,
            confirm_password=confirm_password,
            term_and_condition=term_and_condition,
            address=address,
            first_name=first_name,
            last_name=last_name,
            phone_number=phone_number,
            created_from=created_from,
            locale=locale,
        )
        return self._unary("Register", request, pb.RegisterResponse)

    def confirm_registration(
        self,
        *,
        token: str | None = None,
        email: str | None = None,
        code: str | None = None,
    ) -> pb.ConfirmRegistrationResponse:
        """ConfirmRegistration: marks the account verified, given the token of
        the mailed link, or the address and the mailed six-digit code.

        Raises TokenInvalid / TokenExpired for a bad token, CodeInvalid /
        CodeExpired for a bad code, NotFound.
        """
        if token is not None and (email is not None or code is not None):
            raise TypeError("confirm_registration takes a token, or an email and a code")
        if token is not None:
            request = pb.ConfirmRegistrationRequest(token=token)
        elif email is not None or code is not None:
            request = pb.ConfirmRegistrationRequest(
                email_code=pb.EmailCode(email=email or "", code=code or "")
            )
        else:
            request = pb.ConfirmRegistrationRequest()
        return self._unary("ConfirmRegistration", request, pb.ConfirmRegistrationResponse)

    def resend_confirmation(self, *, email: str) -> pb.ResendConfirmationResponse:
        """ResendConfirmation: mails a new confirmation link to an unverified
        account's address (answers alike for every address).

        Raises ValidationError, RateLimited (``.retry_after``) within the
        cooldown.
        """
        request = pb.ResendConfirmationRequest(email=email)
        return self._unary("ResendConfirmation", request, pb.ResendConfirmationResponse)

    # -- look-ups -------------------------------------------------------------

    def get_account(
        self, *, id: str | None = None, email: str | None = None
    ) -> pb.GetAccountResponse:
        """GetAccount: the account with this id, or this address (compared
        without regard to case). Give exactly one.

        Raises NotFound, ValidationError.
        """
        if id is not None and email is not None:
            raise TypeError("get_account takes an id or an email, not both")
        if id is not None:
            request = pb.GetAccountRequest(id=id)
        elif email is not None:
            request = pb.GetAccountRequest(email=email)
        else:
            request = pb.GetAccountRequest()
        return self._unary("GetAccount", request, pb.GetAccountResponse)

    def list_accounts(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        email_prefix: str = "",
        verified: bool | None = None,
    ) -> pb.ListAccountsResponse:
        """ListAccounts: a page of accounts in registration order; pass the
        answer's ``next_page_token`` for the next. ``verified`` None lists
        verified and unverified alike. Needs ``accounts:admin``.
        """
        request = pb.ListAccountsRequest(
            page_size=page_size, page_token=page_token, email_prefix=email_prefix
        )
        if verified is not None:
            request.verified = verified
        return self._unary("ListAccounts", request, pb.ListAccountsResponse)

    # -- passwords ----------------------------------------------------------

    def check_password(self, *, email: str, password: str) -> pb.CheckPasswordResponse:
        """CheckPassword: the account, when the password is right.

        Raises InvalidCredentials, EmailNotVerified, LoginLocked
        (``.retry_after``), ValidationError.
        """
        request = pb.CheckPasswordRequest(email=email, password=password)
        return self._unary("CheckPassword", request, pb.CheckPasswordResponse)

    def request_password_reset(self, *, email: str) -> pb.RequestPasswordResetResponse:
        """RequestPasswordReset: mails a reset link when the address has an
        account (answers alike for every address).

        Raises ValidationError, RateLimited within the cooldown.
        """
        request = pb.RequestPasswordResetRequest(email=email)
        return self._unary("RequestPasswordReset", request, pb.RequestPasswordResetResponse)

    def reset_password(
        self, *, token: str, password: str, confirm_password: str
    ) -> pb.ResetPasswordResponse:
        """ResetPassword: sets a new password with the token of a reset link.

        Raises TokenInvalid / TokenExpired, ValidationError.
        """
        request = pb.ResetPasswordRequest(
            token=token, password=password, confirm_password=confirm_password
        )
        return self._unary("ResetPassword", request, pb.ResetPasswordResponse)

    def change_password(
        self,
        *,
        id: str,
        current_password: str,
        password: str,
        confirm_password: str,
        keep_session_id: str = "",
    ) -> pb.ChangePasswordResponse:
        """ChangePassword: sets a new password given the current one; every
        session but ``keep_session_id`` ends.

        Raises InvalidCredentials, LoginLocked, ValidationError, NotFound.
        """
        request = pb.ChangePasswordRequest(
            id=id,
            current_password=current_password,
            password=password,
            confirm_password=confirm_password,
            keep_session_id=keep_session_id,
        )
        return self._unary("ChangePassword", request, pb.ChangePasswordResponse)

    # -- profile, address, deletion -------------------------------------------

    def update_profile(
        self,
        *,
        id: str,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        phone_number: str | None = None,
        address: str | None = None,
        locale: str | None = None,
        update_mask: Sequence[str] | None = None,
    ) -> pb.UpdateProfileResponse:
        """UpdateProfile: changes the fields given and nothing else. Without
        ``update_mask`` the mask names every field passed, so
        ``first_name=""`` clears it; with one, it is sent as given
        (``["*"]``: every profile field).

        Raises ValidationError, NotFound.
        """
        values = {
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
            "phone_number": phone_number,
            "address": address,
            "locale": locale,
        }
        request = pb.UpdateProfileRequest(id=id)
        given = [name for name, value in values.items() if value is not None]
        for name in given:
            setattr(request, name, values[name])
        request.update_mask.paths.extend(update_mask if update_mask is not None else given)
        return self._unary("UpdateProfile", request, pb.UpdateProfileResponse)

    def change_email(
        self, *, id: str, new_email: str, current_password: str, code: str = ""
    ) -> pb.ChangeEmailResponse:
        """ChangeEmail: mails a confirmation link to the new address, given the
        current password (and, with two-step sign-in on, a code).

        Raises InvalidCredentials, CodeInvalid, LoginLocked, ValidationError,
        NotFound.
        """
        request = pb.ChangeEmailRequest(
            id=id, new_email=new_email, current_password=current_password, code=code
        )
        return self._unary("ChangeEmail", request, pb.ChangeEmailResponse)

    def confirm_email_change(self, *, token: str) -> pb.ConfirmEmailChangeResponse:
        """ConfirmEmailChange: moves the account to the address its token names.

        Raises TokenInvalid / TokenExpired, AlreadyExists, NotFound.
        """
        request = pb.ConfirmEmailChangeRequest(token=token)
        return self._unary("ConfirmEmailChange", request, pb.ConfirmEmailChangeResponse)

    def delete_account(
        self, *, id: str, current_password: str = "", code: str = ""
    ) -> pb.DeleteAccountResponse:
        """DeleteAccount: erases the account's personal data. Without
        ``current_password`` the caller needs ``accounts:admin``.

        Raises InvalidCredentials, CodeInvalid, ValidationError, NotFound.
        """
        request = pb.DeleteAccountRequest(id=id, current_password=current_password, code=code)
        return self._unary("DeleteAccount", request, pb.DeleteAccountResponse)

    # -- events -------------------------------------------------------------

    def watch_account_events(
        self,
        *,
        after_cursor: str = "",
        types: Iterable[pb.EventType] = (),
        timeout: float | None = None,
    ) -> EventStream:
        """WatchAccountEvents: every retained event after ``after_cursor``
        (from the oldest when empty), then new ones as they commit, for as
        long as the stream is iterated. ``types`` keeps only those
        (``pb.EVENT_TYPE_ACCOUNT_REGISTERED``, ...). The stream has no
        deadline unless ``timeout`` is given; events of type
        EVENT_TYPE_UNSPECIFIED are keep-alives.

        Iterating raises CursorExpired, ValidationError, RateLimited.
        """
        request = pb.WatchAccountEventsRequest(after_cursor=after_cursor, types=list(types))
        call = self._stub.WatchAccountEvents(
            request, timeout=timeout, metadata=self._call_metadata()
        )
        return EventStream(call)

    # -- sessions -----------------------------------------------------------

    def sign_in(
        self, *, email: str, password: str, user_agent: str = "", ip_address: str = ""
    ) -> pb.SignInResponse:
        """SignIn: checks the password and starts a session (an access token
        and a refresh token). ``user_agent`` and ``ip_address`` are the
        shopper's, stored with the session.

        Raises InvalidCredentials, EmailNotVerified, LoginLocked,
        SecondFactorRequired (``.challenge``), ValidationError.
        """
        request = pb.SignInRequest(
            email=email,
            password=password,
            client=pb.ClientInfo(user_agent=user_agent, ip_address=ip_address),
        )
        return self._unary("SignIn", request, pb.SignInResponse)

    def complete_sign_in(
        self,
        *,
        challenge: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
        user_agent: str = "",
        ip_address: str = "",
    ) -> pb.SignInResponse:
        """CompleteSignIn: finishes a sign-in that raised SecondFactorRequired,
        with its challenge and an authenticator code or an unused recovery
        code.

        Raises CodeInvalid, TokenInvalid / TokenExpired (the challenge),
        LoginLocked.
        """
        if totp_code is not None and recovery_code is not None:
            raise TypeError("complete_sign_in takes a totp_code or a recovery_code, not both")
        request = pb.CompleteSignInRequest(
            challenge=challenge,
            client=pb.ClientInfo(user_agent=user_agent, ip_address=ip_address),
        )
        if totp_code is not None:
            request.totp_code = totp_code
        elif recovery_code is not None:
            request.recovery_code = recovery_code
        return self._unary("CompleteSignIn", request, pb.SignInResponse)

    def refresh_session(self, *, refresh_token: str) -> pb.RefreshSessionResponse:
        """RefreshSession: a new access token and a new refresh token for the
        presented one, which stops being current.

        Raises TokenInvalid (invalid, reused, ended) / TokenExpired.
        """
        request = pb.RefreshSessionRequest(refresh_token=refresh_token)
        return self._unary("RefreshSession", request, pb.RefreshSessionResponse)

    def sign_out(self, *, refresh_token: str) -> pb.SignOutResponse:
        """SignOut: ends the session of the refresh token (again: no error)."""
        request = pb.SignOutRequest(refresh_token=refresh_token)
        return self._unary("SignOut", request, pb.SignOutResponse)

    def list_sessions(self, *, account_id: str) -> pb.ListSessionsResponse:
        """ListSessions: the account's live sessions, newest first.

        Raises NotFound, ValidationError.
        """
        request = pb.ListSessionsRequest(account_id=account_id)
        return self._unary("ListSessions", request, pb.ListSessionsResponse)

    def revoke_session(self, *, account_id: str, session_id: str) -> pb.RevokeSessionResponse:
        """RevokeSession: ends one session of the account.

        Raises NotFound, ValidationError.
        """
        request = pb.RevokeSessionRequest(account_id=account_id, session_id=session_id)
        return self._unary("RevokeSession", request, pb.RevokeSessionResponse)

    def revoke_all_sessions(
        self, *, account_id: str, except_session_id: str = ""
    ) -> pb.RevokeAllSessionsResponse:
        """RevokeAllSessions: ends every session of the account but
        ``except_session_id``; answers how many ended.

        Raises NotFound, ValidationError.
        """
        request = pb.RevokeAllSessionsRequest(
            account_id=account_id, except_session_id=except_session_id
        )
        return self._unary("RevokeAllSessions", request, pb.RevokeAllSessionsResponse)

    def verify_access_token(self, *, access_token: str) -> pb.VerifyAccessTokenResponse:
        """VerifyAccessToken: the online check of an access token, which sees a
        sign-out at once (AccessTokenVerifier checks offline).

        Raises TokenInvalid / TokenExpired.
        """
        request = pb.VerifyAccessTokenRequest(access_token=access_token)
        return self._unary("VerifyAccessToken", request, pb.VerifyAccessTokenResponse)

    # -- two-step sign-in -----------------------------------------------------

    def start_totp_enrollment(
        self, *, account_id: str, current_password: str
    ) -> pb.StartTotpEnrollmentResponse:
        """StartTotpEnrollment: a new authenticator secret, its otpauth URI and
        QR code, pending until confirmed.

        Raises InvalidCredentials, FailedPrecondition (already on), NotFound.
        """
        request = pb.StartTotpEnrollmentRequest(
            account_id=account_id, current_password=current_password
        )
        return self._unary("StartTotpEnrollment", request, pb.StartTotpEnrollmentResponse)

    def confirm_totp_enrollment(
        self, *, account_id: str, code: str
    ) -> pb.ConfirmTotpEnrollmentResponse:
        """ConfirmTotpEnrollment: turns two-step sign-in on with a code of the
        pending secret; answers ten recovery codes, shown only here.

        Raises CodeInvalid, FailedPrecondition.
        """
        request = pb.ConfirmTotpEnrollmentRequest(account_id=account_id, code=code)
        return self._unary("ConfirmTotpEnrollment", request, pb.ConfirmTotpEnrollmentResponse)

    def disable_totp(
        self, *, account_id: str, current_password: str, code: str
    ) -> pb.DisableTotpResponse:
        """DisableTotp: turns two-step sign-in off, given the password and a
        code.

        Raises InvalidCredentials, CodeInvalid, FailedPrecondition (not on).
        """
        request = pb.DisableTotpRequest(
            account_id=account_id, current_password=current_password, code=code
        )
        return self._unary("DisableTotp", request, pb.DisableTotpResponse)

    def regenerate_recovery_codes(
        self, *, account_id: str, code: str
    ) -> pb.RegenerateRecoveryCodesResponse:
        """RegenerateRecoveryCodes: ten new recovery codes, given a code; the
        old ones stop working.

        Raises CodeInvalid, FailedPrecondition (not on).
        """
        request = pb.RegenerateRecoveryCodesRequest(account_id=account_id, code=code)
        return self._unary("RegenerateRecoveryCodes", request, pb.RegenerateRecoveryCodesResponse)

    # -- profile images -------------------------------------------------------

    def set_profile_image(
        self, *, account_id: str, data: bytes | BinaryIO
    ) -> pb.SetProfileImageResponse:
        """SetProfileImage: uploads an image (bytes, or a binary file read to
        its end) as the account's profile image: the account id, then the
        file in chunks of :data:`CHUNK_SIZE` bytes.

        Raises ValidationError (not an image, too large), NotFound,
        RateLimited (the image queue is full).
        """

        def messages() -> Iterator[pb.SetProfileImageRequest]:
            yield pb.SetProfileImageRequest(account_id=account_id)
            if isinstance(data, (bytes, bytearray, memoryview)):
                view = memoryview(data)
                for start in range(0, len(view), CHUNK_SIZE):
                    yield pb.SetProfileImageRequest(chunk=bytes(view[start : start + CHUNK_SIZE]))
            else:
                while chunk := data.read(CHUNK_SIZE):
                    yield pb.SetProfileImageRequest(chunk=chunk)

        return self._unary("SetProfileImage", messages(), pb.SetProfileImageResponse)

    def remove_profile_image(self, *, account_id: str) -> pb.RemoveProfileImageResponse:
        """RemoveProfileImage: removes the account's profile image (none: no
        error).

        Raises NotFound, ValidationError.
        """
        request = pb.RemoveProfileImageRequest(account_id=account_id)
        return self._unary("RemoveProfileImage", request, pb.RemoveProfileImageResponse)
