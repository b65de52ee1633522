"""Bearer JWT verification: a local public key (the demo) or an OIDC provider's JWKS (production)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import jwt

from gateway.settings import AuthSettings
from resolvers.principal import Principal, Purpose, Role

_KNOWN_ROLES = {r.value for r in Role}


class AuthenticationError(Exception):
    """The request did not prove who it is; the message says what to fix."""


class NoGatewayRoleError(Exception):
    """The token is valid but grants none of the gateway's roles."""


@dataclass(frozen=True, slots=True)
class _Claims:
    hospital: str = "hospital"
    roles: str = "roles"
    purpose: str = "purpose_of_use"


CLAIMS = _Claims()


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._public_key: str | None = None
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
        elif settings.public_key_file is not None:
            self._public_key = settings.public_key_file.read_text(encoding="ascii")

    async def _key(self, token: str) -> object:
        if self._jwks is not None:
            # PyJWKClient fetches over blocking HTTP; its cache makes the thread hop rare.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            return signing_key.key
        return self._public_key

    async def verify_header(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthenticationError("Send a bearer token in the Authorization header.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("The Authorization header must read 'Bearer <token>'.")
        return await self.verify(token.strip())

    async def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            claims = jwt.decode(
                token,
                key=await self._key(token),  # type: ignore[arg-type]
                algorithms=s.algorithms,
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("The token has expired; obtain a new one.") from None
        except jwt.PyJWKClientError:
            raise AuthenticationError(
                "The token's signing key is not known to the gateway."
            ) from None
        except jwt.InvalidTokenError as e:
            raise AuthenticationError(f"The token is not valid: {e}.") from None
        roles = claims.get(CLAIMS.roles) or []
        if isinstance(roles, str):
            roles = roles.split()
        granted = frozenset(Role(r) for r in roles if r in _KNOWN_ROLES)
        if not granted:
            raise NoGatewayRoleError(
                "The token grants none of the gateway's roles: " + ", ".join(sorted(_KNOWN_ROLES))
            )
        purpose = claims.get(CLAIMS.purpose)
        return Principal(
            subject=str(claims["sub"]),
            hospital_code=claims.get(CLAIMS.hospital),
            roles=granted,
            purpose=Purpose(purpose)
            if isinstance(purpose, str) and purpose in Purpose.__members__
            else None,
            expires_at=float(claims["exp"]),
        )
