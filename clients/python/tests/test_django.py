"""The Django integration against the real service: sign-in through
django.contrib.auth (the test client's login and a login view), the
service's session kept server-side, sign-out at both ends, access-token
authentication in Django REST framework, and the registration view with
the original app's registration tests."""

from __future__ import annotations

import uuid
from typing import Any

import pyotp
import pytest
from django.contrib.auth import authenticate
from django.core.checks import run_checks
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from ecoms_accounts import AccountClient, errors
from ecoms_accounts.django.models import AccountLink
from ecoms_accounts.django.sessions import SESSION_KEY

from conftest import Shopper, register
from service import AUDIENCE, ISSUER, PASSWORD, Service

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ecoms_accounts(settings: Any, service: Service) -> None:
    """Points the project at the service this backend's tests run against."""
    settings.ECOMS_ACCOUNTS = {
        "TARGET": service.grpc_target,
        "API_KEY": service.keys["shop"],
        "JWKS_URL": service.jwks_url,
        "AUDIENCE": AUDIENCE,
        "ISSUER": ISSUER,
    }


def stored(client: Client) -> dict[str, Any]:
    value: dict[str, Any] = client.session[SESSION_KEY]
    return value


# --- sign-in, sessions, sign-out ---------------------------------------------


def test_login_required_redirects_when_signed_out(client: Client) -> None:
    response = client.get("/private/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/private/"


def test_sign_in_with_the_test_client(
    client: Client, accounts: AccountClient, verified: Shopper
) -> None:
    assert client.login(email=verified.email, password=PASSWORD)
    response = client.get("/private/")
    assert response.status_code == 200
    page = response.json()
    # The local user: named by the account id, linked to it, with its address.
    assert page["username"] == page["account_id"] == verified.id
    assert page["email"] == verified.email
    assert AccountLink.objects.get(account_id=verified.id).user.get_username() == verified.id
    # The service's session, kept in the session data on the server.
    session = stored(client)
    assert session["refresh_token"].startswith("acr_")
    live = accounts.list_sessions(account_id=verified.id).sessions
    assert [s.id for s in live] == [session["session_id"]] == [page["session_id"]]


def test_a_login_view_keeps_tokens_out_of_cookies(
    client: Client, accounts: AccountClient, verified: Shopper
) -> None:
    response = client.post(
        "/login/",
        {"email": verified.email, "password": PASSWORD},
        HTTP_USER_AGENT="browser/1.0",
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 200, response.content
    session = stored(client)
    cookies = response.cookies
    # The session cookie, which scripts cannot read, and the CSRF token:
    # neither holds a token of the service.
    assert set(cookies) == {"sessionid", "csrftoken"}
    assert cookies["sessionid"]["httponly"]
    for cookie in cookies.values():
        assert session["refresh_token"] not in cookie.value
        assert session["access_token"] not in cookie.value
    # What the shopper's browser said reached the service with the session.
    (live,) = accounts.list_sessions(account_id=verified.id).sessions
    assert (live.user_agent, live.ip_address) == ("browser/1.0", "198.51.100.4")


def test_the_admin_signs_staff_in_by_their_address(client: Client, verified: Shopper) -> None:
    # The first sign-in makes the local user; an operator makes it staff.
    assert client.login(email=verified.email, password=PASSWORD)
    client.logout()
    user = AccountLink.objects.get(account_id=verified.id).user
    user.is_staff = user.is_superuser = True
    user.save()
    # The admin's form sends the address as `username`.
    response = client.post(
        "/admin/login/?next=/admin/", {"username": verified.email, "password": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert stored(client)["refresh_token"].startswith("acr_")


def test_refusals_sign_nobody_in(client: Client, verified: Shopper, unverified: Shopper) -> None:
    assert not client.login(email=verified.email, password="wrong-password-1")
    assert not client.login(email=unverified.email, password=PASSWORD)
    # With a request, the view learns why.
    request = RequestFactory().post("/login/")
    assert authenticate(request, email=unverified.email, password=PASSWORD) is None
    assert isinstance(request.ecoms_accounts_error, errors.EmailNotVerified)  # type: ignore[attr-defined]
    response = client.post("/login/", {"email": unverified.email, "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["reason"] == "EMAIL_NOT_VERIFIED"
    assert client.get("/private/").status_code == 302


def test_two_step_sign_in_through_the_login_view(
    client: Client, accounts: AccountClient, verified: Shopper
) -> None:
    secret = accounts.start_totp_enrollment(
        account_id=verified.id, current_password=PASSWORD
    ).secret
    recovery = accounts.confirm_totp_enrollment(
        account_id=verified.id, code=pyotp.TOTP(secret).now()
    ).recovery_codes
    first = client.post("/login/", {"email": verified.email, "password": PASSWORD})
    assert first.status_code == 401
    assert first.json()["reason"] == "SECOND_FACTOR_REQUIRED"
    second = client.post("/login/", {"challenge": first.json()["challenge"], "code": recovery[0]})
    assert second.status_code == 200
    assert client.get("/private/").status_code == 200
    assert stored(client)["refresh_token"].startswith("acr_")


def test_logout_ends_the_service_session(
    client: Client, accounts: AccountClient, verified: Shopper
) -> None:
    assert client.login(email=verified.email, password=PASSWORD)
    refresh_token = stored(client)["refresh_token"]
    client.logout()
    with pytest.raises(errors.TokenInvalid):
        accounts.refresh_session(refresh_token=refresh_token)


def test_sign_out_helper(client: Client, accounts: AccountClient, verified: Shopper) -> None:
    assert client.login(email=verified.email, password=PASSWORD)
    refresh_token = stored(client)["refresh_token"]
    assert client.get("/logout/").status_code == 200
    assert client.get("/private/").status_code == 302
    with pytest.raises(errors.TokenInvalid):
        accounts.refresh_session(refresh_token=refresh_token)


def test_access_token_is_refreshed_when_due(
    client: Client, accounts: AccountClient, verified: Shopper
) -> None:
    assert client.login(email=verified.email, password=PASSWORD)
    first = stored(client)
    assert client.get("/token/").json()["access_token"] == first["access_token"]
    # Due for renewal: the refresh token is exchanged and both are kept.
    session = client.session
    session[SESSION_KEY] = {**first, "access_token_expires_at": 0}
    session.save()
    renewed = client.get("/token/").json()["access_token"]
    assert renewed and renewed != first["access_token"]
    assert stored(client)["refresh_token"] != first["refresh_token"]
    # Ended at the service (all sessions revoked): signed out here too.
    accounts.revoke_all_sessions(account_id=verified.id)
    session = client.session
    session[SESSION_KEY] = {**stored(client), "access_token_expires_at": 0}
    session.save()
    assert client.get("/token/").json()["access_token"] is None
    assert client.get("/private/").status_code == 302


def test_session_in_a_cookie_fails_the_checks(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    assert "ecoms_accounts.E001" in [m.id for m in run_checks()]
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    assert not [m for m in run_checks() if m.id and m.id.startswith("ecoms_accounts.")]


# --- Django REST framework ---------------------------------------------------


def test_bearer_access_token(accounts: AccountClient, verified: Shopper) -> None:
    signed_in = accounts.sign_in(email=verified.email, password=PASSWORD)
    api = APIClient()
    response = api.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {signed_in.tokens.access_token}")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "username": verified.id,
        "account_id": verified.id,
        "session_id": signed_in.session.id,
    }
    # The local user was made on first sight, and is found again.
    assert AccountLink.objects.filter(account_id=verified.id).count() == 1
    again = api.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {signed_in.tokens.access_token}")
    assert again.status_code == 200
    assert AccountLink.objects.filter(account_id=verified.id).count() == 1


def test_bad_or_missing_bearer_token_is_401(accounts: AccountClient, verified: Shopper) -> None:
    token = accounts.sign_in(email=verified.email, password=PASSWORD).tokens.access_token
    header, claims, signature = token.split(".")
    api = APIClient()
    for bad in (f"{header}.{claims}.{signature[:-4]}AAAA", "not-a-token"):
        response = api.get("/api/me/", HTTP_AUTHORIZATION=f"Bearer {bad}")
        assert response.status_code == 401, bad
        assert response["WWW-Authenticate"] == "Bearer"
    assert api.get("/api/me/").status_code == 401


# --- the registration view: the original app's registration tests -----------


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def sample_user_data() -> dict[str, str]:
    return {"email": f"tut-{uuid.uuid4().hex[:8]}@mail.com", "password": "tutad1234"}


def test_registration_pass(
    api_client: APIClient, accounts: AccountClient, sample_user_data: dict[str, str]
) -> None:
    sample_user_data.update({"confirm_password": sample_user_data["password"]})
    response = api_client.post("/api/register/", data=sample_user_data)
    assert response.status_code == 201, response.content
    assert response.json()["email"] == sample_user_data["email"]
    account = accounts.get_account(email=sample_user_data["email"]).account
    assert account.id == response.json()["id"]
    assert not account.verified


@pytest.mark.parametrize(
    "email, password, confirm_password, expected_status, expected_error_key, expected_message",
    [
        (
            "not-an-email",
            "Password123",
            "Password123",
            400,
            "email",
            "Enter a valid email address.",
        ),
        (
            "existing@email.com",
            "Password123",
            "Password123",
            400,
            "email",
            "user with this email already exists.",
        ),
        (
            "valid@email.com",
            "short",
            "short",
            400,
            "password",
            "This password is too short. It must contain at least 8 characters.",
        ),
        (
            "valid@email.com",
            "NoNumbers",
            "NoNumbers",
            400,
            "password",
            "password must be alphanumeric",
        ),
        (
            "valid@email.com",
            "NoNumbers5",
            "NoNumbers3",
            400,
            "confirm_password",
            "passwords do not match",
        ),
    ],
)
def test_resister_user_fail(
    api_client: APIClient,
    accounts: AccountClient,
    sample_user_data: dict[str, str],
    email: str,
    password: str,
    confirm_password: str,
    expected_status: int,
    expected_error_key: str,
    expected_message: str,
) -> None:
    if email == "existing@email.com":
        # An address of this run's own, registered at the service first.
        email = register(accounts).email
    sample_user_data.update(
        {"email": email, "password": password, "confirm_password": confirm_password}
    )
    response = api_client.post("/api/register/", data=sample_user_data)
    assert response.status_code == expected_status
    assert expected_message in response.json()[expected_error_key]
