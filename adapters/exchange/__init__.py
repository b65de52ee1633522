"""A member hospital's exchange database (前置机): its published schema and the PostgreSQL adapter."""

from importlib import resources

# Where the contract's later tables begin, in both engines' schema files: a database installed
# before them is given only what follows this line.
PART_2 = "-- Part 2: the assessment's figures."


def exchange_schema_sql() -> str:
    return resources.files(__package__).joinpath("exchange.sql").read_text(encoding="utf-8")


def part_2(schema_sql: str) -> str:
    """The part of a schema file from PART_2 on."""
    at = schema_sql.index(PART_2)
    return schema_sql[at:]
