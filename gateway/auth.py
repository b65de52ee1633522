"""Bearer JWT verification: a local public key (the demo) or an OIDC provider's JWKS (production)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from gateway.request_checks import bad_character
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


# Verified tokens remembered, so a client's every request does not verify its signature again.
_VERIFIED_CAPACITY = 4096


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        self._public_key: object | None = None
        self._verified: OrderedDict[str, Principal] = OrderedDict()
        if settings.jwks_url:
            self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300)
        elif settings.public_key_file is not None:
            # Parsed once: PyJWT would parse a PEM text again for every token.
            self._public_key = serialization.load_pem_public_key(
                settings.public_key_file.read_bytes()
            )

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
        known = self._verified.get(token)
        if known is not None:
            if (
                known.expires_at is None
                or time.time() < known.expires_at + self._settings.leeway_seconds
            ):
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        principal = await self._verify(token)
        self._verified[token] = principal
        if len(self._verified) > _VERIFIED_CAPACITY:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
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
        except jwt.PyJWTError as e:
            raise AuthenticationError(self._why(e, token)) from None
        except (ValueError, TypeError, RecursionError):
            # PyJWT reads the header and payload as JSON; a pathological one fails inside it.
            raise AuthenticationError(_MALFORMED) from None
        return _principal(claims)

    def _why(self, error: jwt.PyJWTError, token: str) -> str:
        """The gateway's own words for a refused token: PyJWT's messages name its internals
        (padding, segments, header strings)."""
        s = self._settings
        match error:
            case jwt.ExpiredSignatureError():
                return "The token has expired; obtain a new one."
            case jwt.PyJWKClientError() | jwt.InvalidKeyError():
                return "The token's signing key is not known to the gateway."
            case jwt.InvalidAlgorithmError():
                return (
                    "The token is signed with an algorithm this gateway does not accept; "
                    f"it accepts {', '.join(s.algorithms)}."
                )
            case jwt.InvalidSignatureError():
                return "The token's signature does not verify with the gateway's key."
            case jwt.InvalidAudienceError():
                return "The token is not meant for this gateway: its `aud` claim is not ours."
            case jwt.InvalidIssuerError():
                return "The token's issuer (`iss`) is not one this gateway trusts."
            case jwt.MissingRequiredClaimError(claim=claim):
                return f"The token lacks the required claim `{claim}`."
            case jwt.InvalidIssuedAtError():
                return "The token's `iat` claim must be a time (a number of seconds)."
            case jwt.ImmatureSignatureError():
                return "The token is not valid yet (`nbf` or `iat` is in the future)."
            case InvalidSubjectError():
                return "The token's `sub` claim must be a string."
            case InvalidJTIError():
                return "The token's `jti` claim must be a string."
            case jwt.DecodeError():
                # After the signature checks out, PyJWT says DecodeError of `exp` and `nbf` too.
                untimely = _untimely_claim(token)
                if untimely is not None:
                    return f"The token's `{untimely}` claim must be a time (a number of seconds)."
                return _MALFORMED
        return "The token is not valid."


_MALFORMED = (
    "The token is not a valid JWT: send it exactly as issued, three base64url parts "
    "(header.payload.signature) of JSON and a signature."
)
# Roles held on behalf of one hospital: their tokens must name it.
HOSPITAL_ROLES = frozenset({Role.CLINICIAN, Role.MEMBER_ADMIN, Role.PARTNER_SYSTEM})


def _untimely_claim(token: str) -> str | None:
    """`exp` or `nbf` when the (signature-checked) payload holds one that is not a number."""
    try:
        segment = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    for claim in ("exp", "nbf"):
        value = payload.get(claim)
        if claim in payload and (not isinstance(value, int | float) or isinstance(value, bool)):
            return claim
    return None


def _refused_claim(claim: str, why: str) -> AuthenticationError:
    return AuthenticationError(f"The token's `{claim}` claim {why}.")


def _text(claim: str, value: Any) -> str:
    """A string claim's value; AuthenticationError for any other type or a bad character."""
    if not isinstance(value, str):
        raise _refused_claim(claim, "must be a string")
    problem = bad_character(value)
    if problem is not None:
        raise _refused_claim(claim, f"contains {problem}")
    return value


def _principal(claims: dict[str, Any]) -> Principal:
    """The principal of verified claims, each of the type the gateway reads it as; an
    AuthenticationError naming the claim otherwise."""
    subject = _text("sub", claims["sub"])
    roles = claims.get(CLAIMS.roles)
    if roles is None:
        roles = []
    elif isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list):
        raise _refused_claim(
            CLAIMS.roles, "must be a list of role names (or one space-separated string)"
        )
    names = [_text(CLAIMS.roles, r) for r in roles]
    granted = frozenset(Role(r) for r in names if r in _KNOWN_ROLES)
    hospital = claims.get(CLAIMS.hospital)
    if hospital is not None:
        hospital = _text(CLAIMS.hospital, hospital) or None  # "" names no hospital
    purpose = claims.get(CLAIMS.purpose)
    if purpose is not None:
        purpose = _text(CLAIMS.purpose, purpose)
    exp = claims["exp"]
    if not granted:
        raise NoGatewayRoleError(
            "The token grants none of the gateway's roles: " + ", ".join(sorted(_KNOWN_ROLES))
        )
    needing = sorted(granted & HOSPITAL_ROLES)
    if needing and hospital is None:
        raise _refused_claim(
            CLAIMS.hospital,
            f"is missing: a token granting {', '.join(needing)} must name the hospital it acts "
            "for, by its code (ask your identity provider to add the claim)",
        )
    return Principal(
        subject=subject,
        hospital_code=hospital,
        roles=granted,
        purpose=Purpose(purpose)
        if purpose is not None and purpose in Purpose.__members__
        else None,
        expires_at=float(exp) if isinstance(exp, int | float) else None,
    )
