"""The alliance registry: the alliance office's own data in the gateway's PostgreSQL."""
