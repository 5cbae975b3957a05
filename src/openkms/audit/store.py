"""Where the trail is kept: four tables, in their own SQLite file or in the PostgreSQL schema.

On SQLite the trail has a file of its own beside the key store's (``openkms.db`` ->
``openkms-audit.db``): every request writes the trail, and sharing the key store's single
write lock would put each warm Encrypt behind the slowest CreateKey. On PostgreSQL the
tables sit in the key store's schema. Either way the schema has its own Alembic lineage
(``audit/migrations``, version table ``audit_schema_version``).

After it is made, the SQLite file is opened with ``mode=rw``: a trail file that has gone is
an error to fail closed on, never a cue to start an empty trail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import make_url

from openkms.audit.signing import SigningKey, new_signing_key, unwrap_signing_key, wrap_signing_key
from openkms.seal import RootKey
from openkms.storage import open_database
from openkms.storage.database import normalise_url
from openkms.storage.schema import UTCDateTime

VERSION_TABLE = "audit_schema_version"
_MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed 64-bit number (not the key store's): serialises writer registration and the
# making of the signing key across the nodes of a cluster.
_AUDIT_LOCK_ID = 0x6F6B6D7361756474

metadata = MetaData()

signing_keys = Table(
    "audit_signing_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("public_key", Text, nullable=False),
    Column("wrapped_private_key", LargeBinary, nullable=False),
)
writers = Table(
    "audit_writers",
    metadata,
    Column("writer_id", String(36), primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("record", Text, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("signature", Text, nullable=False),
)
events = Table(
    "audit_events",
    metadata,
    Column("writer_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("event_time", UTCDateTime, nullable=False, index=True),
    Column("event_source", String(32), nullable=False),
    Column("event_name", String(64), nullable=False, index=True),
    Column("principal_arn", Text, nullable=True),
    Column("access_key_id", String(128), nullable=True),
    Column("error_code", String(128), nullable=True),
    Column("resources", Text, nullable=False),
    Column("record", Text, nullable=False),
    Column("hash", String(64), nullable=False),
)
digests = Table(
    "audit_digests",
    metadata,
    Column("writer_id", String(36), primary_key=True),
    Column("digest_seq", BigInteger, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("record", Text, nullable=False),
    Column("signature", Text, nullable=False),
)
log_file_keys = Table(
    "audit_log_file_keys",
    metadata,
    Column("fingerprint", String(32), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("public_key", LargeBinary, nullable=False),  # DER, PKCS#1
    Column("wrapped_private_key", LargeBinary, nullable=False),
)


EVENT_COLUMNS = (
    "writer_id",
    "seq",
    "event_id",
    "event_time",
    "event_source",
    "event_name",
    "principal_arn",
    "access_key_id",
    "error_code",
    "resources",
    "record",
    "hash",
)


class TrailFileChanged(RuntimeError):
    """The SQLite trail file is not the one this process opened (replaced or removed)."""


@dataclass(frozen=True)
class ChainState:
    """Where one writer's chain stands in the store."""

    head_seq: int
    head_hash: str
    digest_seq: int
    last_signature: str
    undigested: list[str]  # hashes of the events after the last digest


def event_time_within(
    start: dt.datetime | None, end: dt.datetime | None
) -> list[ColumnElement[bool]]:
    """Conditions on ``events.event_time`` for a range read against the records' eventTime,
    which is whole seconds while the column keeps microseconds: an event at 10:00:00.6 reads
    10:00:00, so it is inside a range that ends at 10:00:00 and outside one that starts at
    10:00:00.5."""
    column = events.c.event_time
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        first = start.replace(microsecond=0)
        conditions.append(column >= (first if first == start else first + _SECOND))
    if end is not None:
        conditions.append(column < end.replace(microsecond=0) + _SECOND)
    return conditions


_SECOND = dt.timedelta(seconds=1)


def audit_url(database_url: str) -> str:
    """The trail's database: a sibling file of a SQLite key store, else the same database."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite":
        return url.render_as_string(hide_password=False)
    path = Path(url.database or "")
    suffix = path.suffix or ".db"
    return f"sqlite:///{path.with_name(path.stem + '-audit' + suffix)}"


def _storable(value: Any) -> Any:
    """A look-up column's value as every backend stores it: PostgreSQL refuses NUL in text,
    and a caller's KeyId may hold one (the record itself is JSON, where NUL is escaped). A
    row the store refuses would hold the whole trail, and every request, up."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


# Rows per INSERT: 12 columns each, within SQLite's 32,766 parameters and PostgreSQL's 65,535.
_ROWS_PER_INSERT = 1000


class AuditStore:
    def __init__(self, url: str, create: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.sqlite_path: Path | None = None
        if parsed.get_backend_name() == "sqlite":
            self.sqlite_path = Path(parsed.database or "")
            if not create and not self.sqlite_path.exists():
                raise FileNotFoundError(f"no audit trail at {self.sqlite_path}")
            # Never create the file after the first open (see the module's note).
            url = f"sqlite:///file:{self.sqlite_path}?mode=rw&uri=true" if not create else url
        self._db = open_database(url)
        self.engine = self._db.engine
        marker = "?" if self.dialect == "sqlite" else "%s"
        # Built from constants only: table and column names, the driver's markers.
        columns, markers = ", ".join(EVENT_COLUMNS), ", ".join(marker for _ in EVENT_COLUMNS)
        self._insert_events = f"INSERT INTO audit_events ({columns}) VALUES "  # noqa: S608
        self._row_markers = f"({markers})"
        self._identity = self._file_identity()
        self._writer_lock: int | None = None

    def __repr__(self) -> str:
        return f"AuditStore({self.engine.dialect.name})"

    @property
    def dialect(self) -> str:
        return str(self.engine.dialect.name)

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            self._lock(connection)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        self._identity = self._file_identity()  # the file exists from now on

    def dispose(self) -> None:
        self._db.dispose()
        if self._writer_lock is not None:
            os.close(self._writer_lock)
            self._writer_lock = None

    def reconnect(self) -> None:
        """Drop every connection; the next use opens the file (or server) afresh."""
        self._db.dispose()
        self._identity = self._file_identity()

    def check_file(self) -> None:
        """Raise ``TrailFileChanged`` if the SQLite file was replaced or removed: SQLite would
        go on writing to the open, unlinked file, and those events would be lost."""
        if self.sqlite_path is not None and self._file_identity() != self._identity:
            raise TrailFileChanged(f"{self.sqlite_path} was replaced or removed")

    def _file_identity(self) -> tuple[int, int] | None:
        if self.sqlite_path is None:
            return None
        try:
            stat = os.stat(self.sqlite_path)
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the node's trail-writer lock (SQLite) around a write transaction.

        Every worker process has its own writer on the one SQLite file. Left to SQLite, a
        writer that finds the file locked polls with sleeps that grow to 100 ms, so under
        load the workers' batches waited on each other's sleeps, not on each other's
        commits. A blocking ``flock`` on a sibling file queues them in the kernel instead:
        the next writer starts the moment the previous one commits. Taken in the writer
        thread, the wait releases the GIL. PostgreSQL's writers queue on an advisory lock
        inside the transaction (``lock``)."""
        if self.sqlite_path is None:
            yield
            return
        if self._writer_lock is None:
            path = self.sqlite_path.with_name(self.sqlite_path.name + ".lock")
            self._writer_lock = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._writer_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._writer_lock, fcntl.LOCK_UN)

    def lock(self, connection: Connection) -> None:
        """Serialise with every other node's writers and key making (PostgreSQL)."""
        self._lock(connection)

    def _lock(self, connection: Connection) -> None:
        # SQLite: the write transaction (BEGIN IMMEDIATE) already serialises writers.
        if self.dialect == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _AUDIT_LOCK_ID})

    # -- the signing key ------------------------------------------------------------------

    def ensure_signing_key(self, root_key: RootKey, now: dt.datetime) -> SigningKey:
        with self.engine.begin() as connection:
            self._lock(connection)
            found = self._newest_key(connection, root_key)
            if found is not None:
                return found
            key = new_signing_key()
            connection.execute(
                insert(signing_keys).values(
                    key_id=key.key_id,
                    created_at=now,
                    public_key=key.public_pem,
                    wrapped_private_key=wrap_signing_key(root_key, key),
                )
            )
            return key

    def signing_key(self, root_key: RootKey) -> SigningKey:
        with self.engine.connect() as connection:
            found = self._newest_key(connection, root_key)
        if found is None:
            raise LookupError("the audit trail has no signing key yet")
        return found

    def public_keys(self) -> list[tuple[str, str]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(signing_keys.c.key_id, signing_keys.c.public_key).order_by(
                    signing_keys.c.created_at
                )
            ).all()
        return [(row.key_id, row.public_key) for row in rows]

    def _newest_key(self, connection: Connection, root_key: RootKey) -> SigningKey | None:
        row = connection.execute(
            select(signing_keys).order_by(signing_keys.c.created_at.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return unwrap_signing_key(root_key, row.key_id, bytes(row.wrapped_private_key))

    # -- writing (inside the writer's transaction) ----------------------------------------

    def last_writer(self, connection: Connection) -> tuple[int, str]:
        """The newest writer's position and hash (0 and the genesis hash if none), under the
        lock that keeps positions unique."""
        self._lock(connection)
        row = connection.execute(
            select(writers.c.position, writers.c.hash).order_by(writers.c.position.desc()).limit(1)
        ).first()
        return (0, "0" * 64) if row is None else (int(row.position), str(row.hash))

    def add_writer(
        self,
        connection: Connection,
        writer_id: str,
        position: int,
        record: str,
        hash_: str,
        sig: str,
    ) -> None:
        connection.execute(
            insert(writers).values(
                writer_id=writer_id, position=position, record=record, hash=hash_, signature=sig
            )
        )

    def add_events(self, connection: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert rows in ``EVENT_COLUMNS`` order, as few multi-row INSERTs on the driver as
        the parameter limit allows. Not executemany: the driver gives the interpreter lock up
        for every row's step, and the writer thread then waits out the event loop's switch
        interval (5 ms) to get it back, row after row."""
        for statement, parameters in self._inserts(rows):
            connection.exec_driver_sql(statement, parameters)

    def append_events(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Commit ``rows`` in one transaction on the driver's own connection: the batches of
        a writer that is registered and owes no digest, nearly all of them. SQLAlchemy's
        transaction and connection events cost the writer thread about as much CPU per batch
        as the commit's fsync; here one batch is BEGIN, the INSERTs and COMMIT (on
        PostgreSQL, a batch of one INSERT is that statement alone, in autocommit)."""
        raw = self.engine.raw_connection()
        inserts = list(self._inserts(rows))
        if self.sqlite_path is None and len(inserts) == 1:
            try:
                self._append_in_one_round_trip(raw.driver_connection, *inserts[0])
            finally:
                raw.close()
            return
        try:
            cursor = raw.cursor()
            try:
                if self.sqlite_path is not None:
                    cursor.execute("BEGIN IMMEDIATE")
                for statement, parameters in inserts:
                    cursor.execute(statement, parameters)
                if self.sqlite_path is not None:
                    cursor.execute("COMMIT")
                else:
                    raw.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    if self.sqlite_path is not None:
                        cursor.execute("ROLLBACK")
                    else:
                        raw.rollback()
                raise
            finally:
                cursor.close()
        finally:
            raw.close()  # back to the pool

    @staticmethod
    def _append_in_one_round_trip(
        connection: Any, statement: str, parameters: tuple[Any, ...]
    ) -> None:
        """PostgreSQL: one INSERT statement is its own transaction. In autocommit it is one
        round trip to the server, where psycopg's transaction would take three (BEGIN, the
        INSERT, COMMIT), each a wake-up of the server's backend and of this writer thread."""
        connection.autocommit = True
        try:
            connection.execute(statement, parameters)
        finally:
            # On a broken connection this raises too, and would hide the real error; the
            # pool then discards the connection (its rollback on return fails).
            with contextlib.suppress(Exception):
                connection.autocommit = False

    def _inserts(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """``rows`` as multi-row INSERT statements with their parameters, as many rows to a
        statement as the driver's parameter limit allows."""
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            statement = self._insert_events + ", ".join(self._row_markers for _ in chunk)
            yield statement, tuple(_storable(v) for row in chunk for v in row)

    def event_time(self, when: dt.datetime) -> Any:
        """``when`` as the driver takes it for ``event_time`` (as SQLAlchemy would store it)."""
        if self.dialect == "sqlite":
            return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return when

    def add_digest(self, connection: Connection, row: dict[str, Any]) -> None:
        connection.execute(insert(digests).values(**row))

    def chain_state(self, writer_id: str) -> ChainState | None:
        """The committed state of ``writer_id``'s chain; None if the store has no such writer."""
        with self.engine.connect() as connection:
            writer = connection.execute(
                select(writers.c.hash, writers.c.signature).where(writers.c.writer_id == writer_id)
            ).first()
            if writer is None:
                return None
            digest = connection.execute(
                select(digests.c.digest_seq, digests.c.last_seq, digests.c.signature)
                .where(digests.c.writer_id == writer_id)
                .order_by(digests.c.digest_seq.desc())
                .limit(1)
            ).first()
            digested = 0 if digest is None else int(digest.last_seq)
            tail = connection.execute(
                select(events.c.seq, events.c.hash)
                .where(events.c.writer_id == writer_id, events.c.seq > digested)
                .order_by(events.c.seq)
            ).all()
            if tail:
                head_seq, head_hash = int(tail[-1].seq), str(tail[-1].hash)
            elif digested:
                last = connection.execute(
                    select(events.c.hash).where(
                        events.c.writer_id == writer_id, events.c.seq == digested
                    )
                ).scalar_one()
                head_seq, head_hash = digested, str(last)
            else:
                head_seq, head_hash = 0, str(writer.hash)
        return ChainState(
            head_seq=head_seq,
            head_hash=head_hash,
            digest_seq=0 if digest is None else int(digest.digest_seq),
            last_signature=str(writer.signature if digest is None else digest.signature),
            undigested=[str(row.hash) for row in tail],
        )

    # -- reading (verify, lookup, export) -------------------------------------------------

    def head(self) -> dict[str, Any]:
        """The trail's newest event (writer, sequence number, hash, time) and how many
        writers it has: what ``openkms status`` shows of the chain, no record content."""
        with self.engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(writers)).scalar_one()
            row = connection.execute(
                select(events.c.writer_id, events.c.seq, events.c.hash, events.c.event_time)
                .order_by(events.c.event_time.desc(), events.c.seq.desc())
                .limit(1)
            ).first()
        newest = None
        if row is not None:
            newest = {
                "writer_id": str(row.writer_id),
                "seq": int(row.seq),
                "hash": str(row.hash),
                "event_time": row.event_time.isoformat(),
            }
        return {"writers": int(count), "newest_event": newest}

    def all_writers(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(writers).order_by(writers.c.position)).all()
        return [dict(row._mapping) for row in rows]

    def all_digests(self) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(digests).order_by(digests.c.writer_id, digests.c.digest_seq)
            ).all()
        return [dict(row._mapping) for row in rows]

    def all_events(self, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """Every event, by writer then sequence, read a page at a time."""
        columns = (events.c.writer_id, events.c.seq, events.c.record, events.c.hash)
        after: tuple[str, int] = ("", -1)
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(*columns)
                    .where(
                        (events.c.writer_id > after[0])
                        | ((events.c.writer_id == after[0]) & (events.c.seq > after[1]))
                    )
                    .order_by(events.c.writer_id, events.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                return
            for row in rows:
                yield dict(row._mapping)
            after = (rows[-1].writer_id, int(rows[-1].seq))
