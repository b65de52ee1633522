"""Patients across hospitals without a central index: the resident ID (GB 11643) is checked and
turned, in memory, into the alliance pseudonym: HMAC-SHA256 under the alliance's linkage key.
The raw ID has little entropy, so a hash without the key would not be a pseudonym."""

from __future__ import annotations

import hashlib
import hmac
import re

from resolvers.errors import bad_input, forbidden

_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2, as GB 11643 specifies."""
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalise_resident_id(raw: str) -> str:
    """The 18-character ID, or BAD_USER_INPUT. The message never echoes the ID back."""
    value = raw.strip().upper()
    if not _SHAPE.match(value):
        raise bad_input(
            "residentId must be 18 characters: 17 digits and a check digit or X.",
            field="residentId",
        )
    if value[17] != check_character(value[:17]):
        raise bad_input("residentId has the wrong check character (GB 11643).", field="residentId")
    return value


def pseudonym(resident_id: str, linkage_key: bytes) -> str:
    normalised = normalise_resident_id(resident_id)
    return hmac.new(linkage_key, normalised.encode("ascii"), hashlib.sha256).hexdigest()


def check_pseudonym(value: str) -> str:
    if not _PSEUDONYM.match(value):
        raise bad_input(
            "pseudonym must be the alliance pseudonym: 64 lowercase hex characters.",
            field="pseudonym",
        )
    return value


def linked_pseudonym(resident_id: str, linkage_key: bytes | None) -> str:
    if linkage_key is None:
        raise forbidden("This gateway has no linkage key configured; it cannot link patients.")
    return pseudonym(resident_id, linkage_key)
