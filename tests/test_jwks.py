"""Production authentication: tokens verified against an identity provider's JWKS over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.auth import AuthenticationError, TokenVerifier
from gateway.settings import AuthSettings
from resolvers.principal import Purpose, Role
from tests.conftest import serving

ISSUER = "https://idp.example.test/realms/alliance"


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
async def jwks_url(signing_key: ec.EllipticCurvePrivateKey) -> AsyncIterator[str]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="key-1", use="sig", alg="ES256")

    async def jwks(request: object) -> JSONResponse:
        return JSONResponse({"keys": [jwk]})

    app = Starlette(routes=[Route("/certs", jwks)])
    async with serving(app) as url:
        yield f"{url}/certs"


def _token(key: ec.EllipticCurvePrivateKey, kid: str = "key-1", **claims: object) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "aud": "alliance-gateway",
        "sub": "u-1",
        "iat": now,
        "exp": now + 300,
        "roles": ["CLINICIAN", "NOT_OURS"],
        "hospital": "LHZX",
        "purpose_of_use": "TREATMENT",
        **claims,
    }
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid})


async def test_a_token_signed_by_the_provider_is_accepted(
    jwks_url: str, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks_url, issuer=ISSUER))
    principal = await verifier.verify(_token(signing_key))
    assert principal.subject == "u-1" and principal.hospital_code == "LHZX"
    assert principal.roles == frozenset({Role.CLINICIAN})
    assert principal.purpose is Purpose.TREATMENT


@pytest.mark.parametrize(
    "claims",
    [{"iss": "https://elsewhere.test"}, {"aud": "another-api"}, {"exp": int(time.time()) - 3600}],
)
async def test_issuer_audience_and_expiry_are_checked(
    jwks_url: str, signing_key: ec.EllipticCurvePrivateKey, claims: dict[str, Any]
) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks_url, issuer=ISSUER))
    with pytest.raises(AuthenticationError):
        await verifier.verify(_token(signing_key, **claims))


async def test_unknown_keys_are_refused(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks_url, issuer=ISSUER))
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(AuthenticationError, match="signing key"):
        await verifier.verify(_token(stranger, kid="key-2"))
    with pytest.raises(AuthenticationError):
        await verifier.verify(_token(stranger, kid="key-1"))


async def test_a_remembered_token_is_still_refused_once_it_expires(
    jwks_url: str, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    verifier = TokenVerifier(AuthSettings(jwks_url=jwks_url, issuer=ISSUER, leeway_seconds=0))
    token = _token(signing_key, exp=int(time.time()) + 2)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first, "verified once, remembered"
    await asyncio.sleep(max(0.0, (first.expires_at or 0) - time.time()) + 0.1)
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(token)
