"""The GraphQL runtime around the public contract: document limits and the parser, error
formatting, the executor, and `build_schema`, which puts them together with schema/."""
