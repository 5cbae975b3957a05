"""Formats and primitives: ciphertext blobs, encryption-context canonicalisation. No I/O."""
