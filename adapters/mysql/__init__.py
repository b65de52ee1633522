"""A member hospital's exchange database on MySQL 8 or MariaDB 10.11, as a source port
(`[[members]] kind = "mysql"`): the published schema (`adapters/exchange/exchange.mysql.sql`), the
adapter (`source`), change capture by the updated_at watermark (`changes`), the driver's failures in
the gateway's words (`driver_errors`), sessions and DSNs (`session`), rows and values (`values`),
and bulk loading (`bulk`). The driver is aiomysql."""

from importlib import resources


def exchange_schema_sql() -> str:
    """The exchange contract for MySQL/MariaDB, beside the PostgreSQL one."""
    return (
        resources.files("adapters.exchange")
        .joinpath("exchange.mysql.sql")
        .read_text(encoding="utf-8")
    )
