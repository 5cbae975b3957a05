"""Making an AWS managed key on the first use of its predefined alias.

The key and its alias are written in one transaction, so no one ever sees a managed key
without its alias or an alias without its key. Two first uses at once (two threads, two
worker processes, two nodes on one PostgreSQL database) both try; the alias's primary key
lets only one commit, and the other rolls back everything it wrote and uses the winner's key.

Resolution calls this on a cache miss, which on the event loop has already been refused
(``WouldBlock``) before anything was read: creation always happens on the worker-thread
re-run, and warm requests never get here.
"""

from __future__ import annotations

from openkms.crypto.key_specs import KeySpec, KeyUsage
from openkms.domain.managed_keys import (
    KEY_MANAGER_AWS,
    ROTATION_PERIOD_DAYS,
    managed_key_policy,
    managed_service,
)
from openkms.ops.context import Services
from openkms.ops.key_records import first_material, new_key_record
from openkms.storage import AliasRecord, DuplicateEntry


def materialise_managed_key(
    services: Services, account_id: str, region: str, alias_name: str
) -> str | None:
    """The id of the AWS managed key ``alias_name`` names in this account and region, made
    now if it has none yet; None if ``alias_name`` is no AWS managed key's alias."""
    service = managed_service(alias_name)
    if service is None:
        return None
    try:
        with services.db.transaction() as tx:
            existing = tx.get_alias(account_id, region, alias_name)
            if existing is not None:
                return existing.target_key_id
            now = services.clock.now()
            record = new_key_record(
                services,
                account_id,
                region,
                now,
                description=service.description,
                key_usage=KeyUsage.ENCRYPT_DECRYPT.value,
                key_spec=KeySpec.SYMMETRIC_DEFAULT.value,
                origin="AWS_KMS",
                policy=managed_key_policy(service, services.partition, account_id, region),
                key_manager=KEY_MANAGER_AWS,
                rotation_period_days=ROTATION_PERIOD_DAYS,
            )
            opaque = services.keystore.generate(record.key_spec, record.arn, 1)
            material = first_material(record, opaque, now)
            tx.insert_key(record)
            tx.insert_material(material)
            tx.insert_alias(AliasRecord(account_id, region, alias_name, record.key_id, now, now))
            return record.key_id
    except DuplicateEntry:
        # Another process made it between our read and our insert; ours was rolled back.
        with services.db.transaction(readonly=True) as tx:
            winner = tx.get_alias(account_id, region, alias_name)
        return winner.target_key_id if winner is not None else None
