"""Settings: an alliance.toml file, overridden by ALLIANCE_* environment variables.

Nested keys use a double underscore: ALLIANCE_REGISTRY__DSN overrides [registry] dsn.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from adapters.sources import kinds as source_kinds
from adapters.sources.port import SourceConfig
from resolvers.assessment.rules import AssessmentRules
from resolvers.principal import Role
from resolvers.rules import AllianceRules


class RegistrySettings(BaseModel):
    dsn: str | None = None
    pool_min_size: int = Field(1, ge=0)
    pool_max_size: int = Field(10, ge=1)
    command_timeout_seconds: float = Field(5.0, gt=0)


class AuthSettings(BaseModel):
    issuer: str = "alliance-gateway"
    audience: str = "alliance-gateway"
    # Production: the identity provider's JWKS. The demo: a local PEM public key.
    jwks_url: str | None = None
    public_key_file: Path | None = None
    algorithms: list[str] = ["RS256", "ES256"]
    leeway_seconds: int = Field(30, ge=0)

    @model_validator(mode="after")
    def _a_key_source(self) -> AuthSettings:
        # When both are given, the identity provider wins: ALLIANCE_AUTH__JWKS_URL can then move a
        # demo configuration onto a real provider without editing the file.
        if self.jwks_url is None and self.public_key_file is None:
            raise ValueError("auth needs jwks_url (an identity provider) or public_key_file")
        return self


class MemberSourceSettings(BaseModel):
    """One member hospital's source: its exchange database and how hard to try it."""

    code: str
    # Which adapter serves it (adapters/sources/kinds.py): "postgres", …
    kind: str = "postgres"
    dsn: str | None = None
    # Keep the DSN (with its password) out of the file: the name of an environment variable.
    dsn_env: str | None = None
    read_only: bool = False
    timeout_seconds: float = Field(2.0, gt=0)
    max_concurrency: int = Field(8, ge=1)
    pool_max_size: int = Field(4, ge=1)
    circuit_failure_threshold: int = Field(3, ge=1)
    circuit_reset_seconds: float = Field(5.0, gt=0)
    # The hospital's own column names: {table: {our name: theirs}}.
    columns: dict[str, dict[str, str]] = {}
    # A FHIR source (kind "fhir"): its service base URL, and the name of the environment variable
    # holding its bearer token when it needs one.
    base_url: str | None = None
    token_env: str | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not re.match(r"^[A-Z][A-Z0-9-]{1,19}$", value):
            raise ValueError("a member code is 2-20 capital letters, digits or '-'")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in source_kinds.known():
            raise ValueError(f"kind must be one of {', '.join(source_kinds.known())}")
        return value

    @model_validator(mode="after")
    def _has_dsn(self) -> MemberSourceSettings:
        if self.kind == "fhir":
            if not self.base_url:
                raise ValueError(f"member {self.code} (kind fhir) needs base_url")
        elif self.dsn is None and self.dsn_env is None:
            raise ValueError(f"member {self.code} needs dsn or dsn_env")
        return self

    def resolved_dsn(self) -> str:
        if self.dsn_env is not None:
            value = os.environ.get(self.dsn_env)
            if value:
                return value
            if self.dsn is None:
                raise ValueError(
                    f"member {self.code}: environment variable {self.dsn_env} is unset"
                )
        assert self.dsn is not None
        return self.dsn

    def source_config(self) -> SourceConfig:
        return SourceConfig(
            member=self.code,
            kind=self.kind,
            dsn=None if self.kind == "fhir" else self.resolved_dsn(),
            read_only=self.read_only,
            timeout_seconds=self.timeout_seconds,
            pool_max_size=self.pool_max_size,
            columns=self.columns,
            base_url=self.base_url,
            token_env=self.token_env,
        )


class LimitSettings(BaseModel):
    """What one request may ask (gateway/runtime/limits.py explains how each is counted)."""

    max_depth: int = Field(12, ge=1)
    max_aliases: int = Field(30, ge=0)
    max_tokens: int = Field(4000, ge=10)
    max_cost: int = Field(5000, ge=1)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    # GraphQL operations over HTTP one worker process serves at once; beyond, 503 OVERLOADED.
    max_in_flight: int = Field(128, ge=1)


class PersistedDocumentSettings(BaseModel):
    """An allowlist of documents by SHA-256 (a JSON object {sha256 hex: document})."""

    manifest: Path | None = None
    # Principals with any of these roles may run only documents from the manifest.
    required_for_roles: list[Role] = []

    @model_validator(mode="after")
    def _manifest_when_required(self) -> PersistedDocumentSettings:
        if self.required_for_roles and self.manifest is None:
            raise ValueError("persisted_documents.required_for_roles needs a manifest")
        return self


class RateLimitSettings(BaseModel):
    """A token bucket per principal (the token's subject), per gateway replica."""

    enabled: bool = True
    requests_per_second: float = Field(20.0, gt=0)
    burst: int = Field(40, ge=1)


MIN_HOOK_SECRET = 32


class EventSettings(BaseModel):
    """The event log, its subscribers, and the change watch of the members' sources."""

    retention_days: float = Field(30, gt=0)
    # Subscriptions: how many undelivered events a subscriber may have before it is cut off.
    subscriber_queue: int = Field(1000, ge=1)
    replay_page: int = Field(500, ge=1)
    keep_alive_seconds: float = Field(15, gt=0)
    # A safety net for a NOTIFY lost while the hub reconnects.
    hub_fallback_poll_seconds: float = Field(5, gt=0)
    # The change watch. A replica with watch = false serves subscribers but never watches.
    watch: bool = True
    poll_interval_seconds: float = Field(1.0, gt=0)
    notify_fallback_seconds: float = Field(30, gt=0)
    overlap_seconds: float = Field(10, ge=0)
    claim_interval_seconds: float = Field(1.0, gt=0)
    # The FHIR members' fast path (rest-hook Subscriptions): the gateway's base URL as their
    # servers reach it (none: they are polled), and the secret every replica checks their
    # notifications with (each member is given its own, derived from it).
    fhir_hook_base_url: str | None = None
    fhir_hook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _hook_has_a_secret(self) -> EventSettings:
        if self.fhir_hook_base_url is None:
            return self
        if not self.fhir_hook_base_url.startswith(("http://", "https://")):
            raise ValueError("events.fhir_hook_base_url must be an http(s) URL")
        secret = self.fhir_hook_secret
        if secret is None or len(secret.get_secret_value()) < MIN_HOOK_SECRET:
            raise ValueError(
                f"events.fhir_hook_base_url needs fhir_hook_secret, at least {MIN_HOOK_SECRET} "
                "characters, the same on every replica (ALLIANCE_EVENTS__FHIR_HOOK_SECRET)"
            )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ALLIANCE_", env_nested_delimiter="__", extra="forbid"
    )

    alliance_id: str
    registry: RegistrySettings = RegistrySettings()
    auth: AuthSettings
    rules: AllianceRules = AllianceRules()
    # The annual assessment's scoring rules and pass mark (README, "Annual assessment").
    assessment: AssessmentRules = AssessmentRules()
    members: list[MemberSourceSettings] = []
    # The alliance's linkage key for patient pseudonyms (HMAC). Keep it in the environment.
    linkage_key: SecretStr | None = None
    graphiql: bool = False
    # GraphiQL's assets (`npm run build` in gateway/graphiql/); default: that directory's static/.
    graphiql_assets: Path | None = None
    # A demo.json whose tokens the GraphiQL page offers without login: the demo's, never production.
    graphiql_demo_tokens: Path | None = None
    introspection: bool = False
    # Server processes on this host (`serve`, `demo`); 0: one per core available.
    workers: int = Field(0, ge=0, le=64)
    # WebSocket permessage-deflate: subscription messages are small, and each connection's
    # compressor costs about 42 KiB and a third of the delivery rate (tests/bench/subscriptions.py).
    websocket_compression: bool = False
    limits: LimitSettings = LimitSettings()
    persisted_documents: PersistedDocumentSettings = PersistedDocumentSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    events: EventSettings = EventSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init values; the environment must win over them.
        return env_settings, init_settings


def worker_count(settings: Settings) -> int:
    if settings.workers:
        return settings.workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_settings(config_file: Path | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {}
    if config_file is not None:
        config_file = config_file.resolve()
        values = tomllib.loads(config_file.read_text(encoding="utf-8"))
        key_file = values.get("auth", {}).get("public_key_file")
        if key_file is not None:
            values["auth"]["public_key_file"] = config_file.parent / key_file
        manifest = values.get("persisted_documents", {}).get("manifest")
        if manifest is not None:
            values["persisted_documents"]["manifest"] = config_file.parent / manifest
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
