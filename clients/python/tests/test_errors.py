"""Every exception of ecoms_accounts.errors, each from a real refusal of the
service, with what it carries; and the table of reasons against the
service's source, so that a new reason cannot go unmapped."""

from __future__ import annotations

import re
import socket
import time
import uuid

import grpc
import jwt
import pyotp
import pytest

from ecoms_accounts import AccountClient, errors

from conftest import Shopper, register
from service import LOGIN_MAX_FAILURES, PASSWORD, REPO, SECRET_KEY, Service, new_email


def test_validation_error_lists_every_violation_in_drf_shape(accounts: AccountClient) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        accounts.register(email="not-an-email", password="short", confirm_password="short")
    error = refused.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.errors == {
        "email": ["Enter a valid email address."],
        "password": [
            "This password is too short. It must contain at least 8 characters.",
            "password must be alphanumeric",
        ],
    }


def test_already_exists(accounts: AccountClient, unverified: Shopper) -> None:
    with pytest.raises(errors.AlreadyExists) as refused:
        register(accounts, unverified.email.upper())
    assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert refused.value.errors == {"email": ["user with this email already exists."]}


def test_not_found(accounts: AccountClient) -> None:
    with pytest.raises(errors.NotFound) as refused:
        accounts.get_account(id=str(uuid.uuid4()))
    assert refused.value.code == grpc.StatusCode.NOT_FOUND


def test_invalid_credentials(accounts: AccountClient, verified: Shopper) -> None:
    with pytest.raises(errors.InvalidCredentials) as refused:
        accounts.check_password(email=verified.email, password="wrong-password-1")
    assert refused.value.reason == "INVALID_CREDENTIALS"
    assert refused.value.message == "Unable to log in with provided credentials."


def test_email_not_verified(accounts: AccountClient, unverified: Shopper) -> None:
    with pytest.raises(errors.EmailNotVerified) as refused:
        accounts.sign_in(email=unverified.email, password=PASSWORD)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_login_locked_says_when_to_retry(accounts: AccountClient, verified: Shopper) -> None:
    for _ in range(LOGIN_MAX_FAILURES):
        with pytest.raises(errors.InvalidCredentials):
            accounts.sign_in(email=verified.email, password="wrong-password-1")
    # Locked: even the right password is refused until the lockout ends.
    with pytest.raises(errors.LoginLocked) as refused:
        accounts.sign_in(email=verified.email, password=PASSWORD)
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.value.retry_after is not None and 0 < refused.value.retry_after <= 60
    assert not isinstance(refused.value, errors.RateLimited)


def test_second_factor_required_carries_the_challenge(
    accounts: AccountClient, verified: Shopper
) -> None:
    secret = accounts.start_totp_enrollment(
        account_id=verified.id, current_password=PASSWORD
    ).secret
    accounts.confirm_totp_enrollment(account_id=verified.id, code=pyotp.TOTP(secret).now())
    with pytest.raises(errors.SecondFactorRequired) as refused:
        accounts.sign_in(email=verified.email, password=PASSWORD)
    assert refused.value.challenge
    # The challenge is CompleteSignIn's: a wrong code is refused as a code,
    # a made-up challenge as an invalid one.
    with pytest.raises(errors.CodeInvalid) as wrong_code:
        accounts.complete_sign_in(challenge=refused.value.challenge, recovery_code="aaaaa-aaaaa")
    assert wrong_code.value.reason == "SECOND_FACTOR_INVALID"
    with pytest.raises(errors.TokenInvalid) as made_up:
        accounts.complete_sign_in(challenge="not-a-challenge", totp_code="123456")
    assert made_up.value.reason == "CHALLENGE_INVALID"


def test_token_invalid(accounts: AccountClient) -> None:
    with pytest.raises(errors.TokenInvalid) as refused:
        accounts.confirm_registration(token="not.a.token")
    assert refused.value.reason == "TOKEN_INVALID"
    assert not isinstance(refused.value, errors.TokenExpired)


def test_token_expired(service: Service, accounts: AccountClient, unverified: Shopper) -> None:
    # The mailed token, its expiry moved into the past and signed again with
    # the service's key (confirmation tokens are HS256 JWTs under SECRET_KEY).
    token = service.wait_for_mail(unverified.email, "confirm-registration").token
    claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], audience="confirm-registration")
    claims["exp"] = int(time.time()) - 10
    expired = jwt.encode(claims, SECRET_KEY, algorithm="HS256")
    with pytest.raises(errors.TokenExpired) as refused:
        accounts.confirm_registration(token=expired)
    assert refused.value.reason == "TOKEN_EXPIRED"
    assert isinstance(refused.value, errors.TokenInvalid)


def test_reused_refresh_token_is_invalid(accounts: AccountClient, verified: Shopper) -> None:
    signed_in = accounts.sign_in(email=verified.email, password=PASSWORD)
    accounts.refresh_session(refresh_token=signed_in.tokens.refresh_token)
    with pytest.raises(errors.TokenInvalid) as refused:
        accounts.refresh_session(refresh_token=signed_in.tokens.refresh_token)
    assert refused.value.reason == "REFRESH_TOKEN_REUSED"
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_code_invalid(service: Service, accounts: AccountClient, unverified: Shopper) -> None:
    mailed = service.wait_for_mail(unverified.email, "confirm-registration").code
    wrong = f"{(int(mailed) + 1) % 1_000_000:06d}"
    with pytest.raises(errors.CodeInvalid) as refused:
        accounts.confirm_registration(email=unverified.email, code=wrong)
    assert refused.value.reason == "CODE_INVALID"


def test_failed_precondition(accounts: AccountClient, verified: Shopper) -> None:
    with pytest.raises(errors.FailedPrecondition) as refused:
        accounts.disable_totp(account_id=verified.id, current_password=PASSWORD, code="123456")
    assert refused.value.reason == "SECOND_FACTOR_NOT_ENABLED"


def test_rate_limited_by_the_callers_quota(service: Service) -> None:
    tight = service.client("tight")
    with pytest.raises(errors.NotFound):  # an answer all the same: it uses the quota
        tight.get_account(email=new_email())
    with pytest.raises(errors.RateLimited) as refused:
        tight.get_account(email=new_email())
    assert refused.value.reason == "QUOTA_EXCEEDED"
    assert refused.value.retry_after is not None and refused.value.retry_after > 0


def test_rate_limited_by_the_resend_cooldown(accounts: AccountClient, unverified: Shopper) -> None:
    accounts.resend_confirmation(email=unverified.email)
    with pytest.raises(errors.RateLimited) as refused:
        accounts.resend_confirmation(email=unverified.email)
    assert refused.value.reason is None
    assert refused.value.retry_after is not None and refused.value.retry_after > 0


def test_permission_denied_names_the_scope(service: Service) -> None:
    reader = service.client("reader")
    with pytest.raises(errors.PermissionDenied) as refused:
        reader.register(email=new_email(), password=PASSWORD, confirm_password=PASSWORD)
    assert refused.value.scope == "accounts:register"
    assert refused.value.reason == "SCOPE_MISSING"


def test_unauthenticated_without_a_key_or_with_a_wrong_one(service: Service) -> None:
    with pytest.raises(errors.Unauthenticated) as missing:
        service.client(None).get_account(email=new_email())
    assert missing.value.reason == "API_KEY_MISSING"
    with AccountClient(service.grpc_target, api_key="acs_nobody") as stranger:
        with pytest.raises(errors.Unauthenticated) as wrong:
            stranger.get_account(email=new_email())
    assert wrong.value.reason == "API_KEY_INVALID"


def test_unavailable_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with AccountClient(f"127.0.0.1:{port}", timeout=5) as client:
        with pytest.raises(errors.Unavailable) as refused:
            client.get_account(email="nobody@example.com")
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE


def test_every_reason_the_service_sends_has_a_class() -> None:
    """The reasons are the upper-case string literals of the functions and
    statuses that name them in the service's source."""
    sources = [
        "src/grpc/status.rs",
        "src/service/error.rs",
        "src/access/mod.rs",
        "src/auth/token.rs",
    ]
    sent = set()
    for source in sources:
        text = (REPO / source).read_text()
        sent |= set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', text))
    assert len(sent) > 20, sent
    assert sorted(sent - errors.REASONS.keys()) == []
