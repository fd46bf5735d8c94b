"""Verify an authlog access token with PyJWT, knowing nothing but the JWKS URL.

Usage: verify_with_pyjwt.py JWKS_URL TOKEN ISSUER AUDIENCE
Prints the verified claims as JSON; exits non-zero if PyJWT refuses the token.
"""

import json
import sys

import jwt


def main() -> int:
    jwks_url, token, issuer, audience = sys.argv[1:5]
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["EdDSA"],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
