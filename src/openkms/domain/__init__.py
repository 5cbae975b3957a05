"""Rules about keys that handlers and background jobs share: key states and their transitions,
and the writes that change a key. Nothing here knows about HTTP."""
