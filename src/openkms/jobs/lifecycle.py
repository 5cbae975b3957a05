"""The lifecycle jobs: rotate keys when due, destroy keys whose deletion window ended, and
delete imported material past its ValidTo.

Every process of every node runs them. A pass reads which keys look due, then hands each to
a domain rule that locks the key and re-checks it, so each piece of work happens once
(``openkms.domain.lifecycle``, ``openkms.domain.imports``); the others find nothing left to
do.

Each piece of work done is recorded in the audit trail as the service event KMS writes for
it (``openkms.jobs.service_events``), queued once its transaction has committed. While the
trail cannot be written a pass does nothing: what cannot be recorded is not done (the
requests' fail-closed rule), and a commit the writer has not yet made durable is kept and
written first once the trail is back.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.audit import AuditEvent, AuditSink
from openkms.clock import Clock
from openkms.domain import imports, lifecycle
from openkms.domain.key_states import KeyState
from openkms.jobs import service_events
from openkms.keystore import KeyStore
from openkms.storage import Database, KeyRecord, StorageError

log = logging.getLogger(__name__)

# Keys handed to the rules per kind and batch, and batches per pass: a pass ends (and the
# next tick goes on with a larger backlog) after at most 2,000 keys of each kind.
_BATCH = 100
_BATCHES_PER_PASS = 20
_REPORTED_MAX = 10_000


@dataclass
class JobReport:
    rotated: int = 0
    deleted: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.rotated + self.deleted + self.expired


class LifecycleJobs:
    def __init__(
        self, db: Database, keystore: KeyStore, clock: Clock, audit: AuditSink | None = None
    ) -> None:
        self._db = db
        self._keystore = keystore
        self._clock = clock
        self._audit = audit
        self._reported: set[tuple[str, str]] = set()

    def run_once(self) -> JobReport:
        """One pass over everything that is due now (a backlog in batches, up to a bound, so
        a pass ends and the next tick goes on)."""
        now = self._clock.now()
        report = JobReport()
        if self._audit is not None and not self._audit.available:
            return report  # nothing is done that the trail cannot record
        for _ in range(_BATCHES_PER_PASS):
            if not self._batch(now, report):
                break
        return report

    def _step(self, kind: str, key_id: str, rule: Callable[..., Any], *args: Any) -> Any:
        """Run one key's rule; a failure is logged and the pass goes on with the other keys
        (one broken key must not stop every rotation and deletion)."""
        try:
            return rule(self._db, *args)
        except StorageError as error:
            log.warning("lifecycle %s of key %s failed: %s", kind, key_id, type(error).__name__)
        except Exception:
            # A key that fails every pass is reported once, not once a second.
            if (kind, key_id) not in self._reported:
                if len(self._reported) >= _REPORTED_MAX:
                    self._reported.clear()
                self._reported.add((kind, key_id))
                log.exception("lifecycle %s of key %s failed (reported once)", kind, key_id)
        return False

    def _batch(self, now: dt.datetime, report: JobReport) -> bool:
        """Work one batch of each kind; True if any kind had a full batch (more may wait)."""
        with self._db.transaction(readonly=True) as tx:
            due_rotation = tx.keys_due("next_rotation_date", KeyState.ENABLED, now, _BATCH)
            due_deletion = tx.keys_due("deletion_date", KeyState.PENDING_DELETION, now, _BATCH)
            expired = tx.materials_expired(now, _BATCH)
        for key_id in due_rotation:
            if self._step("rotation", key_id, lifecycle.rotate_if_due, self._keystore, key_id, now):
                report.rotated += 1
                log.info("rotated key %s (automatic rotation)", key_id)
                self._record(key_id, lambda key: self._rotated(key, now))
        for key_id in due_deletion:
            before = self._key(key_id)  # the key's row is gone once it is deleted
            destroyed = self._step("deletion", key_id, lifecycle.delete_if_due, key_id, now)
            if isinstance(destroyed, list):  # None: not due; False: failed
                for handle in destroyed:
                    self._keystore.discard(handle)
                report.deleted += 1
                log.info("deleted key %s: its deletion window ended", key_id)
                if before is not None:
                    self._submit(service_events.deleted(before, now))
        for key_id, version in expired:
            expire = imports.expire_material
            material_id = self._material_id(key_id, version)
            if self._step("expiry", key_id, expire, self._keystore, key_id, version, now):
                report.expired += 1
                log.info("deleted imported material %d of key %s: expired", version, key_id)
                self._record(key_id, functools.partial(_expired, now=now, material=material_id))
        return _BATCH in (len(due_rotation), len(due_deletion), len(expired))

    # -- service events --------------------------------------------------------------------

    def _submit(self, event: AuditEvent) -> None:
        if self._audit is not None:
            # Not awaited (no event loop here): the writer commits it with the next batch,
            # and keeps it through a failure of the store until it is written.
            self._audit.submit(event, wait=False)

    def _record(self, key_id: str, make: Callable[[KeyRecord], AuditEvent | None]) -> None:
        if self._audit is None:
            return
        key = self._key(key_id)
        if key is not None and (event := make(key)) is not None:
            self._submit(event)

    def _key(self, key_id: str) -> KeyRecord | None:
        if self._audit is None:
            return None
        with self._db.transaction(readonly=True) as tx:
            return tx.get_key(key_id)

    def _material_id(self, key_id: str, version: int) -> str:
        if self._audit is None:
            return ""
        with self._db.transaction(readonly=True) as tx:
            materials = tx.list_materials(key_id)
        return next((m.material_id for m in materials if m.version == version), "")

    def _rotated(self, key: KeyRecord, now: dt.datetime) -> AuditEvent | None:
        with self._db.transaction(readonly=True) as tx:
            materials = {m.version: m for m in tx.list_materials(key.key_id)}
        current = materials.get(key.current_version)
        if current is None:
            return None
        previous = max((v for v in materials if v < key.current_version), default=None)
        previous_id = materials[previous].material_id if previous is not None else None
        return service_events.rotated(key, now, previous_id, current.material_id)


def _expired(key: KeyRecord, now: dt.datetime, material: str) -> AuditEvent:
    return service_events.material_expired(key, now, material)
