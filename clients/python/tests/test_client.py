"""AccountClient against the real service: each RPC group once, with the
answers checked, on every backend."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pyotp
import pytest

from ecoms_accounts import CHUNK_SIZE, AccountClient, pb
from ecoms_accounts.errors import NotFound, SecondFactorRequired, TokenInvalid

from conftest import Shopper, register
from service import PASSWORD, Service, new_email


def test_register_then_confirm_with_the_mailed_link(
    service: Service, accounts: AccountClient
) -> None:
    email = new_email()
    answer = accounts.register(
        email=email.upper(),
        username="bob",
        password=PASSWORD,
        confirm_password=PASSWORD,
        term_and_condition=True,
        first_name="Bob",
    )
    account = answer.account
    assert (account.email, account.username, account.first_name) == (email, "bob", "Bob")
    assert not account.verified and account.term_and_condition

    by_id = accounts.get_account(id=account.id).account
    by_email = accounts.get_account(email=email.upper()).account
    assert by_id == by_email == account

    confirmed = accounts.confirm_registration(
        token=service.wait_for_mail(email, "confirm-registration").token
    ).account
    assert confirmed.id == account.id and confirmed.verified


def test_confirm_with_the_mailed_code(
    service: Service, accounts: AccountClient, unverified: Shopper
) -> None:
    code = service.wait_for_mail(unverified.email, "confirm-registration").code
    account = accounts.confirm_registration(email=unverified.email, code=code).account
    assert account.verified


def test_check_password_answers_the_account(accounts: AccountClient, verified: Shopper) -> None:
    assert (
        accounts.check_password(email=verified.email, password=PASSWORD).account.id == verified.id
    )


def test_session_from_sign_in_to_sign_out(accounts: AccountClient, verified: Shopper) -> None:
    signed_in = accounts.sign_in(
        email=verified.email, password=PASSWORD, user_agent="pytest", ip_address="192.0.2.7"
    )
    assert signed_in.account.id == verified.id
    assert signed_in.tokens.refresh_token.startswith("acr_")
    assert (signed_in.session.user_agent, signed_in.session.ip_address) == ("pytest", "192.0.2.7")

    online = accounts.verify_access_token(access_token=signed_in.tokens.access_token)
    assert (online.account_id, online.session_id) == (verified.id, signed_in.session.id)
    sessions = accounts.list_sessions(account_id=verified.id).sessions
    assert [s.id for s in sessions] == [signed_in.session.id]

    refreshed = accounts.refresh_session(refresh_token=signed_in.tokens.refresh_token)
    assert refreshed.session.id == signed_in.session.id
    assert refreshed.tokens.refresh_token != signed_in.tokens.refresh_token

    accounts.sign_out(refresh_token=refreshed.tokens.refresh_token)
    with pytest.raises(TokenInvalid):
        accounts.refresh_session(refresh_token=refreshed.tokens.refresh_token)


def test_revoke_sessions(accounts: AccountClient, verified: Shopper) -> None:
    first = accounts.sign_in(email=verified.email, password=PASSWORD)
    second = accounts.sign_in(email=verified.email, password=PASSWORD)
    third = accounts.sign_in(email=verified.email, password=PASSWORD)
    accounts.revoke_session(account_id=verified.id, session_id=first.session.id)
    revoked = accounts.revoke_all_sessions(
        account_id=verified.id, except_session_id=third.session.id
    ).revoked
    assert revoked == 1
    assert [s.id for s in accounts.list_sessions(account_id=verified.id).sessions] == [
        third.session.id
    ]
    with pytest.raises(TokenInvalid):
        accounts.refresh_session(refresh_token=second.tokens.refresh_token)


def test_two_step_sign_in(accounts: AccountClient, verified: Shopper) -> None:
    enrollment = accounts.start_totp_enrollment(account_id=verified.id, current_password=PASSWORD)
    assert enrollment.otpauth_uri.startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrollment.secret)
    confirmed = accounts.confirm_totp_enrollment(account_id=verified.id, code=totp.now())
    assert confirmed.account.totp_enabled and len(confirmed.recovery_codes) == 10

    # The second step, with a recovery code: the authenticator's code of
    # this 30-second step was just used up by the enrolment.
    with pytest.raises(SecondFactorRequired) as required:
        accounts.sign_in(email=verified.email, password=PASSWORD)
    signed_in = accounts.complete_sign_in(
        challenge=required.value.challenge, recovery_code=confirmed.recovery_codes[0]
    )
    assert signed_in.account.id == verified.id and signed_in.tokens.access_token

    codes = accounts.regenerate_recovery_codes(
        account_id=verified.id, code=confirmed.recovery_codes[1]
    ).recovery_codes
    assert len(codes) == 10 and set(codes).isdisjoint(confirmed.recovery_codes)
    off = accounts.disable_totp(account_id=verified.id, current_password=PASSWORD, code=codes[0])
    assert not off.account.totp_enabled


def test_password_reset_and_change(
    service: Service, accounts: AccountClient, verified: Shopper
) -> None:
    accounts.request_password_reset(email=verified.email)
    reset = service.wait_for_mail(verified.email, "reset-password")
    accounts.reset_password(token=reset.token, password="another456", confirm_password="another456")
    accounts.check_password(email=verified.email, password="another456")
    accounts.change_password(
        id=verified.id,
        current_password="another456",
        password=PASSWORD,
        confirm_password=PASSWORD,
    )
    accounts.check_password(email=verified.email, password=PASSWORD)


def test_update_profile_changes_the_fields_passed(
    accounts: AccountClient, verified: Shopper
) -> None:
    account = accounts.update_profile(id=verified.id, first_name="Ann", locale="de").account
    assert (account.first_name, account.locale, account.username) == ("Ann", "de", "shopper")
    # An empty value passed is a value: the field is cleared.
    account = accounts.update_profile(id=verified.id, first_name="").account
    assert (account.first_name, account.locale) == ("", "de")


def test_change_email(service: Service, accounts: AccountClient, verified: Shopper) -> None:
    new_address = new_email("moved")
    accounts.change_email(id=verified.id, new_email=new_address, current_password=PASSWORD)
    token = service.wait_for_mail(new_address, "confirm-email").token
    account = accounts.confirm_email_change(token=token).account
    assert account.email == new_address and account.verified


def test_list_accounts_by_prefix(accounts: AccountClient) -> None:
    prefix = new_email("listed").split("@")[0]
    ids = [register(accounts, f"{prefix}.{n}@example.com").id for n in range(3)]
    first = accounts.list_accounts(page_size=2, email_prefix=prefix)
    rest = accounts.list_accounts(
        page_size=2, email_prefix=prefix, page_token=first.next_page_token
    )
    assert [a.id for a in first.accounts] + [a.id for a in rest.accounts] == ids
    assert not rest.next_page_token
    assert accounts.list_accounts(email_prefix=prefix, verified=True).accounts == []


def test_watch_account_events_streams_the_registration(accounts: AccountClient) -> None:
    shopper = register(accounts)
    with accounts.watch_account_events(
        types=[pb.EVENT_TYPE_ACCOUNT_REGISTERED], timeout=30
    ) as events:
        for event in events:
            assert event.type in (pb.EVENT_TYPE_ACCOUNT_REGISTERED, pb.EVENT_TYPE_UNSPECIFIED)
            if event.account_id == shopper.id:
                break
    # Cancelled: the stream stops rather than raising.
    assert list(events) == []


def test_profile_image_is_sent_in_chunks(accounts: AccountClient, verified: Shopper) -> None:
    image = _noise_png(200, 200)
    assert len(image) > 2 * CHUNK_SIZE, "an image of three chunks or more"
    account = accounts.set_profile_image(account_id=verified.id, data=image).account
    assert account.image_url and account.thumbnail_url
    # A file object is read to its end: the same bytes arrive, and the
    # service, which names images by their content, answers the same URL.
    again = accounts.set_profile_image(account_id=verified.id, data=io.BytesIO(image)).account
    assert again.image_url == account.image_url
    removed = accounts.remove_profile_image(account_id=verified.id).account
    assert removed.image_url == "" and removed.thumbnail_url == ""


def test_delete_account(accounts: AccountClient, verified: Shopper) -> None:
    accounts.delete_account(id=verified.id, current_password=PASSWORD)
    with pytest.raises(NotFound):
        accounts.get_account(id=verified.id)


def _noise_png(width: int, height: int) -> bytes:
    """An RGB PNG of random pixels: it does not compress, so its size is
    about width * height * 3 bytes."""
    rng = random.Random(7)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
