"""AccessTokenVerifier: the offline check of the service's access tokens.

An access token is an EdDSA-signed JWT (RFC 9068); the public keys are at
the sidecar's ``/.well-known/jwks.json``. The verifier keeps them, fetches
them again when a token names a key it does not have (a rotation), at most
once per ``refetch_interval``, and also once ``cache_ttl`` has passed, so
that a withdrawn key stops being believed.

Offline verification cannot see a sign-out before the token expires
(ACCESS_TOKEN_TTL, five minutes by default); a service that must, calls
``AccountClient.verify_access_token`` instead.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import jwt

from .errors import Details, TokenExpired, TokenInvalid, Unavailable

__all__ = ["AccessTokenVerifier"]

#: RFC 9068's media type, short and long; the service writes the short one.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


def _invalid(message: str) -> TokenInvalid:
    # The reason VerifyAccessToken would answer, so that one handler serves both.
    return TokenInvalid(
        grpc.StatusCode.UNAUTHENTICATED, message, Details(reason="ACCESS_TOKEN_INVALID")
    )


class AccessTokenVerifier:
    """Verifies access tokens offline against the service's published keys.

    ``jwks_url`` is the sidecar's ``/.well-known/jwks.json``; ``audience`` and
    ``issuer`` are the service's ACCESS_TOKEN_AUDIENCE and
    ACCESS_TOKEN_ISSUER. ``leeway`` is the clock skew allowed, in seconds,
    on ``exp`` and ``iat``. Thread-safe: share one.
    """

    def __init__(
        self,
        jwks_url: str,
        audience: str,
        issuer: str,
        leeway: float = 5.0,
        refetch_interval: float = 30.0,
        cache_ttl: float = 3600.0,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jwks_url = jwks_url
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.refetch_interval = refetch_interval
        self.cache_ttl = cache_ttl
        self.fetch_timeout = fetch_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a genuine, current access token: ``sub`` (the
        account id), ``sid`` (the session), ``amr``, ``iss``, ``aud``,
        ``exp``, ``iat``...

        Raises TokenExpired for an expired token, TokenInvalid for any other
        that does not verify, Unavailable when the keys cannot be fetched.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise _invalid(f"the access token is malformed: {error}") from error
        # RFC 9068: an access token says so in its header, so that another
        # JWT signed with the same key cannot pass for one.
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise _invalid("not an access token")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _invalid("the access token names no key")
        key = self._key(kid)
        if key is None:
            raise _invalid("the access token is signed with an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],  # pinned: never the algorithm the token names
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "sid"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenExpired(
                grpc.StatusCode.UNAUTHENTICATED,
                "the access token has expired",
                Details(reason="ACCESS_TOKEN_EXPIRED"),
            ) from error
        except jwt.PyJWTError as error:
            raise _invalid(f"the access token does not verify: {error}") from error
        return claims

    def _key(self, kid: str) -> Any:
        """The public key named ``kid``. The key set is fetched when it is
        stale or lacks ``kid``, but at most once per ``refetch_interval``:
        tokens naming made-up keys cannot make the verifier hammer the
        service. While the service cannot be reached, the keys held are
        still believed."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.cache_ttl
            may_fetch = (
                self._attempted_at is None or now - self._attempted_at >= self.refetch_interval
            )
            if (stale or kid not in self._keys) and may_fetch:
                self._attempted_at = now
                try:
                    self._keys = self._fetch()
                    self._fetched_at = now
                except Unavailable:
                    if kid not in self._keys:
                        raise
            if self._fetched_at is None:
                raise Unavailable(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the signing keys at {self.jwks_url} could not be fetched yet",
                )
            return self._keys.get(kid)

    def _fetch(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.jwks_url, timeout=self.fetch_timeout) as answer:
                document = json.load(answer)
            key_set = jwt.PyJWKSet.from_dict(document)
        except (OSError, ValueError, jwt.PyJWTError) as error:
            raise Unavailable(
                grpc.StatusCode.UNAVAILABLE,
                f"the signing keys at {self.jwks_url} cannot be fetched: {error}",
            ) from error
        return {key.key_id: key.key for key in key_set.keys if key.key_id}
