"""Who is calling: SigV4 verification and the credentials behind it."""
