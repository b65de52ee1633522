"""The kinds of source a member can have, by the `kind` its `[[members]]` entry names. Each kind's
adapter is imported only when a member uses it, so a driver nobody needs is never loaded."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from adapters.sources.port import SourceConfig, SourcePort

# kind → "module:callable" building its adapter from a SourceConfig.
_FACTORIES: dict[str, str] = {
    "postgres": "adapters.exchange.postgres:PostgresExchange.from_config",
    "mysql": "adapters.mysql.source:MysqlExchange.from_config",
    "fhir": "adapters.fhir.source:FhirSource.from_config",
}


def known() -> list[str]:
    return sorted(_FACTORIES)


def register(kind: str, factory: str) -> None:
    """Adds a kind of source: `factory` is "module:callable", the callable taking a SourceConfig."""
    _FACTORIES[kind] = factory


def open_source(config: SourceConfig) -> SourcePort:
    """The member's adapter, not yet connected: a source that is down must not stop the gateway."""
    target = _FACTORIES.get(config.kind)
    if target is None:
        raise ValueError(
            f"member {config.member}: unknown source kind {config.kind!r}; known: {', '.join(known())}"
        )
    module_name, _, attribute = target.partition(":")
    factory: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        factory = getattr(factory, part)
    assert callable(factory)
    build: Callable[[SourceConfig], SourcePort] = factory
    return build(config)
