"""The demo's own signing key and the tokens minted with it. Production tokens come from an
identity provider; nothing here is used to verify them."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.auth import CLAIMS

PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
ALGORITHM = "ES256"


def ensure_signing_key(directory: Path) -> tuple[Path, Path]:
    private, public = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    if not private.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private.chmod(0o600)
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private, public


def mint(
    private_key_file: Path,
    *,
    issuer: str,
    audience: str,
    subject: str,
    roles: list[str],
    hospital: str | None = None,
    purpose: str | None = None,
    ttl_seconds: int = 30 * 24 * 3600,
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
        CLAIMS.roles: roles,
    }
    if hospital:
        claims[CLAIMS.hospital] = hospital
    if purpose:
        claims[CLAIMS.purpose] = purpose
    return jwt.encode(claims, private_key_file.read_text(encoding="ascii"), algorithm=ALGORITHM)
