"""The KMS operations: their declarations (``catalogue``) and handlers, one module per area.

Importing this package registers every handler; ``DECLARATIONS`` and ``HANDLERS`` are what the
dispatcher is built from. ``OPERATIONS`` names the operations this server implements.
"""

from __future__ import annotations

from openkms.ops import (  # noqa: F401 - registers the handlers
    aliases,
    crypto,
    custom_key_stores,
    grants,
    imports,
    key_agreement,
    key_policies,
    key_usage,
    keys,
    lifecycle,
    macs,
    signing,
    tags,
)
from openkms.ops.catalogue import DECLARATIONS
from openkms.ops.declaration import HANDLERS

OPERATIONS = HANDLERS

__all__ = ["DECLARATIONS", "HANDLERS", "OPERATIONS"]
