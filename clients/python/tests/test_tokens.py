"""AccessTokenVerifier with real access tokens and the service's real key
set: claims of a genuine token, refusals of altered ones, a refetch when a
token names a key the verifier lacks, and no more than one per interval."""

from __future__ import annotations

import base64
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from ecoms_accounts import AccessTokenVerifier, AccountClient, errors

from conftest import Shopper
from service import AUDIENCE, ISSUER, PASSWORD, Service


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _with_part(token: str, index: int, change: dict) -> str:
    """``token`` with its header (0) or claims (1) changed, the signature kept."""
    parts = token.split(".")
    document = json.loads(_unb64(parts[index]))
    document.update(change)
    parts[index] = _b64(json.dumps(document).encode())
    return ".".join(parts)


@pytest.fixture
def signed_in(accounts: AccountClient, verified: Shopper) -> tuple[Shopper, str, str]:
    """A shopper, its access token and its session id."""
    answer = accounts.sign_in(email=verified.email, password=PASSWORD)
    return verified, answer.tokens.access_token, answer.session.id


def test_a_genuine_token_answers_its_claims(
    service: Service, signed_in: tuple[Shopper, str, str]
) -> None:
    shopper, token, session_id = signed_in
    claims = AccessTokenVerifier(service.jwks_url, AUDIENCE, ISSUER).verify(token)
    assert claims["sub"] == shopper.id
    assert claims["sid"] == session_id
    assert claims["amr"] == ["pwd"]
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["exp"] > claims["iat"]


def test_altered_or_misaddressed_tokens_are_refused(
    service: Service, signed_in: tuple[Shopper, str, str]
) -> None:
    _, token, _ = signed_in
    verifier = AccessTokenVerifier(service.jwks_url, AUDIENCE, ISSUER)
    forged = _with_part(token, 1, {"sub": "01890000-0000-7000-8000-000000000000"})
    with pytest.raises(errors.TokenInvalid) as refused:
        verifier.verify(forged)
    assert refused.value.reason == "ACCESS_TOKEN_INVALID"
    assert "Signature verification failed" in refused.value.message
    # A genuine token, at a service it was not issued for or from another issuer.
    with pytest.raises(errors.TokenInvalid):
        AccessTokenVerifier(service.jwks_url, "payments", ISSUER).verify(token)
    with pytest.raises(errors.TokenInvalid):
        AccessTokenVerifier(service.jwks_url, AUDIENCE, "https://elsewhere.example").verify(token)
    # Not an access token: another `typ`, or no JWT at all.
    with pytest.raises(errors.TokenInvalid):
        verifier.verify(_with_part(token, 0, {"typ": "JWT"}))
    with pytest.raises(errors.TokenInvalid):
        verifier.verify("not-a-jwt")


class _KeySets:
    """A JWKS endpoint that first serves a key set without the service's
    keys (as a cache would hold before a rotation), then the service's own;
    it counts what it served."""

    def __init__(self, real_url: str) -> None:
        decoy = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key()))
        decoy.update(kid="retired-key", alg="EdDSA", use="sig")
        self.decoy = json.dumps({"keys": [decoy]}).encode()
        self.real_url = real_url
        self.served = 0

    def body(self) -> bytes:
        self.served += 1
        if self.served == 1:
            return self.decoy
        with urllib.request.urlopen(self.real_url, timeout=5) as answer:
            return bytes(answer.read())


@pytest.fixture
def key_sets(service: Service) -> Iterator[tuple[_KeySets, str]]:
    sets = _KeySets(service.jwks_url)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = sets.body()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sets, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


def test_an_unknown_key_is_fetched_once_then_rate_limited(
    key_sets: tuple[_KeySets, str], signed_in: tuple[Shopper, str, str]
) -> None:
    sets, url = key_sets
    shopper, token, _ = signed_in
    now = [1000.0]
    verifier = AccessTokenVerifier(url, AUDIENCE, ISSUER, refetch_interval=30, clock=lambda: now[0])
    made_up = _with_part(token, 0, {"kid": "made-up-key"})

    # The first look fetches the key set: the decoy, which lacks every key
    # the service signs with.
    with pytest.raises(errors.TokenInvalid) as refused:
        verifier.verify(made_up)
    assert "unknown key" in refused.value.message
    assert sets.served == 1
    # Within the interval, a token with a key the set lacks fetches nothing.
    now[0] += 10
    with pytest.raises(errors.TokenInvalid):
        verifier.verify(token)
    assert sets.served == 1

    # After it, one refetch brings the service's keys, and the token verifies.
    now[0] += 30
    assert verifier.verify(token)["sub"] == shopper.id
    assert sets.served == 2
    # Known now: no fetch.
    verifier.verify(token)
    assert sets.served == 2
    # A made-up key, however often it comes, fetches at most once an interval.
    for _ in range(5):
        with pytest.raises(errors.TokenInvalid):
            verifier.verify(made_up)
    assert sets.served == 2
    now[0] += 30
    for _ in range(5):
        with pytest.raises(errors.TokenInvalid):
            verifier.verify(made_up)
    assert sets.served == 3
    # The keys held stay believed meanwhile.
    assert verifier.verify(token)["sub"] == shopper.id


def test_unreachable_keys_are_unavailable(signed_in: tuple[Shopper, str, str]) -> None:
    _, token, _ = signed_in
    verifier = AccessTokenVerifier("http://127.0.0.1:9/.well-known/jwks.json", AUDIENCE, ISSUER)
    with pytest.raises(errors.Unavailable):
        verifier.verify(token)
