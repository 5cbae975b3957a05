"""Wrapped values carry a format byte: mark every value wrapped by release 0.1 as format 0.

Release 0.1 stored wrapped values as ``nonce | ciphertext+tag`` with nothing saying how they
were wrapped. From now on each starts with a format byte (``openkms.seal.root_key``); this
prefixes the old ones with 0x00 ("legacy, root-key generation 1"), which needs no root key,
so the upgrade runs before the root of trust is opened. Idempotence comes from Alembic's
version table: this revision runs once per database.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LEGACY = b"\x00"
_ROOT_CHECK = "root-key-check"

# (table, value column, primary-key columns, optional filter)
_WRAPPED = [
    ("access_keys", "wrapped_secret", ("access_key_id",), None),
    ("key_materials", "wrapped_material", ("key_id", "version"), None),
    ("server_settings", "value", ("name",), ("name", _ROOT_CHECK)),
]


def upgrade() -> None:
    bind = op.get_bind()
    for table_name, column, keys, only in _WRAPPED:
        table = sa.table(
            table_name, sa.column(column, sa.LargeBinary), *(sa.column(k) for k in keys)
        )
        query = sa.select(*(table.c[k] for k in keys), table.c[column])
        if only is not None:
            query = query.where(table.c[only[0]] == only[1])
        for row in bind.execute(query).all():
            value = bytes(row[-1])
            new = _LEGACY + value
            where = [table.c[k] == row[i] for i, k in enumerate(keys)]
            bind.execute(sa.update(table).where(*where).values({column: new}))


def downgrade() -> None:
    # Values wrapped since the upgrade are format 1, which release 0.1 cannot read.
    raise NotImplementedError("openkms databases cannot be downgraded past revision 0002")
