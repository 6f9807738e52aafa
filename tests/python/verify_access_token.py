#!/usr/bin/env python3
"""Verifies an account-service access token offline, as a service that takes
these tokens would: the key from the service's JWKS, then the signature, the
type, expiry, audience and issuer, all checked by PyJWT. Prints the claims as
JSON and exits 0; exits 1, saying why on stderr, when the token does not
verify, and 2 on a wrong command line.

Usage: verify_access_token.py JWKS_URL ACCESS_TOKEN ISSUER AUDIENCE

Needs PyJWT with `cryptography` (pip install PyJWT cryptography).
"""
import json
import sys

import jwt


# The README shows this function as it stands here.
def verify_access_token(token, jwks, issuer, audience):
    """The claims of `token`, once PyJWT has proven it genuine and current."""
    # RFC 9068: an access token says so in its header, so that an ID token
    # or another JWT signed with the same key cannot pass for one.
    if jwt.get_unverified_header(token).get("typ") not in ("at+jwt", "application/at+jwt"):
        raise jwt.InvalidTokenError("not an access token")
    key = jwks.get_signing_key_from_jwt(token)  # by its `kid`; the set is cached
    return jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],  # pinned: never the algorithm the token names
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "sub", "sid"]},
    )
# End of the README's function.


def main():
    if len(sys.argv) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    jwks_url, token, issuer, audience = sys.argv[1:]
    try:
        claims = verify_access_token(token, jwt.PyJWKClient(jwks_url), issuer, audience)
    except jwt.PyJWTError as error:
        print(f"the access token does not verify: {error}", file=sys.stderr)
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
