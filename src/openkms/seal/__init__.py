"""The root of trust. In this release: a development root key kept in a file."""
