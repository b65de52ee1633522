"""The embedded demo, apart from the serving code: the demo alliance's data (`data`), its synthetic
activity (`activity`), the simulator of the hospitals' own systems (`simulate`), the embedded
PostgreSQL (`embedded_postgres`), the provisioning that ties them together (`provision`) and the
demo's signing key and tokens (`tokens`).

Nothing in the serving code imports this package; the CLI's `demo` and `token` subcommands import it
lazily. Its dependencies (pgserver, tomli-w, psutil) are the `demo` extra and dependency group, not
the product's: this module imports none of them, so `gateway.demo.data` and `gateway.demo.tokens`
load without them."""
