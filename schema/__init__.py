"""The public contract: types, inputs, enums and the root operations. No SQL, no HTTP, no rules."""
