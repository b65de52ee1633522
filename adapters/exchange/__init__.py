"""A member hospital's exchange database (前置机): its published schema and the PostgreSQL adapter."""

from importlib import resources


def exchange_schema_sql() -> str:
    return resources.files(__package__).joinpath("exchange.sql").read_text(encoding="utf-8")
