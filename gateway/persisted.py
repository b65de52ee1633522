"""Persisted documents: an allowlist manifest of documents by SHA-256, and the rule that some roles
(PARTNER_SYSTEM, typically) may run only documents from it.

A request names a document either the Automatic Persisted Queries way,
`extensions: {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}`, or the GraphQL-over-HTTP
persisted-documents way, `documentId: "sha256:<hex>"`. The hash is the lower-case hex SHA-256 of
the document's UTF-8 text, exactly as sent.

- A hash in the manifest runs that document.
- A hash alone that is not in the manifest: PERSISTED_QUERY_NOT_FOUND, answered as a GraphQL
  response with that single error (the document could not be retrieved, so nothing ran): HTTP
  400 with application/graphql-response+json, like any request error, and 200 with
  application/json, as the GraphQL-over-HTTP spec asks for legacy clients and as APQ clients
  expect. The gateway never registers documents: the manifest is an allowlist, deployed with it.
- A document and a hash: the hash must be the document's (else BAD_REQUEST, 400). A document
  outside the manifest then runs as a free-form document, so an APQ client's retry with the full
  text works for principals who may send free-form documents.
- A free-form document from a principal with a role in `required_for_roles`:
  PERSISTED_QUERY_REQUIRED, HTTP 403: the request is well-formed, and this principal is not
  allowed to send it (a policy about who asks, like FORBIDDEN).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resolvers.principal import Principal, Role

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_REQUIRED = "PERSISTED_QUERY_REQUIRED"
BAD_REQUEST = "BAD_REQUEST"

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


class ManifestError(ValueError):
    """The manifest cannot be used; the gateway does not start with it."""


class PersistedDocumentError(Exception):
    """`status` None: a GraphQL request error (answered like a validation error); otherwise the
    HTTP status of a refused request."""

    def __init__(self, code: str, message: str, status: int | None) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _bad_request(message: str) -> PersistedDocumentError:
    return PersistedDocumentError(BAD_REQUEST, message, 400)


def load_manifest(path: Path) -> dict[str, str]:
    """A JSON object {sha256 hex: document}; every hash must be its document's."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ManifestError(f"Cannot read the persisted-document manifest {path}: {e}") from None
    except ValueError as e:
        raise ManifestError(f"The persisted-document manifest {path} is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ManifestError(
            f"The persisted-document manifest {path} must be a JSON object "
            "{sha256 hex: document}."
        )
    documents: dict[str, str] = {}
    for key, document in raw.items():
        if not isinstance(document, str):
            raise ManifestError(f"Manifest {path}: the entry {key!r} is not a document string.")
        if document_hash(document) != key.lower():
            raise ManifestError(
                f"Manifest {path}: {key!r} is not the SHA-256 of its document "
                f"(that is {document_hash(document)})."
            )
        documents[key.lower()] = document
    return documents


@dataclass(frozen=True)
class PersistedDocuments:
    documents: Mapping[str, str] = field(default_factory=dict)
    required_for: frozenset[Role] = frozenset()

    @classmethod
    def load(cls, manifest: Path | None, required_for: Iterable[Role] = ()) -> PersistedDocuments:
        return cls(load_manifest(manifest) if manifest else {}, frozenset(required_for))

    def _required(self, principal: Principal) -> bool:
        return principal.has_any(*self.required_for)

    def _refuse_free_form(self, principal: Principal, why: str) -> PersistedDocumentError:
        roles = ", ".join(sorted(r.value for r in principal.roles & self.required_for))
        return PersistedDocumentError(
            PERSISTED_QUERY_REQUIRED,
            f"{why} Principals with the role {roles} may run only persisted documents: send "
            '`extensions: {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}` with the '
            "hash of a document in the alliance's manifest (ask the alliance office to add one).",
            403,
        )

    def resolve(
        self,
        query: Any,
        extensions: Mapping[str, Any] | None,
        document_id: Any,
        principal: Principal,
    ) -> Any:
        """The document to run: the persisted one the request names, or its own `query` (which
        the caller still checks). Raises PersistedDocumentError."""
        wanted = self._requested_hash(extensions, document_id)
        has_query = query is not None and query != ""
        if has_query and not isinstance(query, str):
            raise _bad_request("`query` must be a string.")
        if wanted is None:
            if has_query and self._required(principal):
                raise self._refuse_free_form(principal, "This request sends a free-form document.")
            return query
        if has_query:
            if document_hash(query) != wanted:
                raise _bad_request(
                    "The persisted-document hash is not the SHA-256 of `query`: send the "
                    "lower-case hex SHA-256 of the document's exact UTF-8 text, or only one of them."
                )
            if wanted not in self.documents and self._required(principal):
                raise self._refuse_free_form(
                    principal, f"The document sha256:{wanted} is not in the manifest."
                )
            return query
        document = self.documents.get(wanted)
        if document is None:
            remedy = (
                "ask the alliance office to add the document."
                if self._required(principal)
                else "send the document itself in `query` (with or without the hash)."
            )
            raise PersistedDocumentError(
                PERSISTED_QUERY_NOT_FOUND,
                f"No persisted document sha256:{wanted} in this gateway's manifest; {remedy}",
                None,
            )
        return document

    @staticmethod
    def _requested_hash(extensions: Mapping[str, Any] | None, document_id: Any) -> str | None:
        wanted: str | None = None
        if document_id is not None and document_id != "":
            if not isinstance(document_id, str) or not document_id.startswith("sha256:"):
                raise _bad_request("`documentId` must be `sha256:` and 64 lower-case hex digits.")
            wanted = _hex(document_id.removeprefix("sha256:"), "documentId")
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is not None:
            if (
                not isinstance(persisted, dict)
                or persisted.get("version") != 1
                or "sha256Hash" not in persisted
            ):
                raise _bad_request(
                    "`extensions.persistedQuery` must be "
                    '{"version": 1, "sha256Hash": "<64 hex digits>"}.'
                )
            hashed = _hex(persisted["sha256Hash"], "extensions.persistedQuery.sha256Hash")
            if wanted is not None and hashed != wanted:
                raise _bad_request(
                    "`documentId` and `extensions.persistedQuery` name two documents."
                )
            wanted = hashed
        return wanted


def _hex(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _SHA256_HEX.match(value.lower()):
        raise _bad_request(f"`{name}` must be a SHA-256 in hex (64 digits).")
    return value.lower()
