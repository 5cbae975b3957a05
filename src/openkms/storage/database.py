"""Engines, migrations and transactions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine, make_url

from openkms.storage.blocking import check_may_block
from openkms.storage.changes import Change, ChangeListener
from openkms.storage.errors import DuplicateEntry, StorageError, StorageUnavailable
from openkms.storage.repository import Transaction

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
# How long a request waits for a locked or slow database before it fails (retryably).
WAIT_SECONDS = 5.0
# Any fixed 64-bit number: serialises migrations of nodes starting at once on PostgreSQL.
_MIGRATION_LOCK_ID = 0x6F70656E6B6D73


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` as users write it; drive it with psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[ChangeListener] = []
        self._sequence_listeners: list[Callable[[int, int], None]] = []

    def __repr__(self) -> str:
        # The URL may hold a password.
        return f"Database({self.dialect})"

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` with what each committed transaction changed (and with what
        other processes changed, as the change feed follower finds it)."""
        self._listeners.append(listener)

    def add_sequence_listener(self, listener: Callable[[int, int], None]) -> None:
        """Call ``listener`` with the first and last change-log sequence numbers of each
        committed transaction that changed something."""
        self._sequence_listeners.append(listener)

    def publish(self, changes: Iterable[Change]) -> None:
        """Hand changes found in the change log to this process's listeners."""
        changes = list(changes)
        for listener in self._listeners:
            listener(changes)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (Alembic), one node at a time."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with _translated_errors(), self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[Transaction]:
        """One atomic unit of work: all of it commits, or none of it does.

        ``readonly`` transactions only read; on SQLite they do not take the write lock, so
        they run beside a writer instead of queueing behind it. On the event loop a
        transaction is refused (``WouldBlock``) before it starts.
        """
        check_may_block()
        sequence = (0, 0)
        with _translated_errors():
            with self.engine.connect() as connection:
                if readonly:
                    connection = connection.execution_options(openkms_readonly=True)
                with connection.begin():
                    tx = Transaction(connection)
                    yield tx
                    if tx.changes:
                        sequence = tx.log_changes(dt.datetime.now(dt.UTC))
            changes = tx.changes
        if changes:
            for listener in self._listeners:
                listener(changes)
            for sequence_listener in self._sequence_listeners:
                sequence_listener(*sequence)

    def pool_in_use(self) -> int:
        """Connections checked out of the pool now (the metrics)."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        return int(checked_out()) if checked_out is not None else 0

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except exc.IntegrityError:
        raise DuplicateEntry("a row with this identity exists already") from None
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        raise StorageUnavailable(f"the database is unavailable ({type(error).__name__})") from None
    except exc.SQLAlchemyError as error:
        raise StorageError(f"the database failed ({type(error).__name__})") from None


def open_database(url: str) -> Database:
    with _translated_errors():
        return _open_database(url)


def _open_database(url: str) -> Database:
    url = normalise_url(url)
    # hide_parameters: a database error must never carry request values into the log.
    # The pool matches the worker threads that run requests that need the database. A
    # database that is locked or slow fails a request within WAIT_SECONDS (retryably)
    # rather than holding it, and a thread, for as long as the lock lasts.
    options: dict[str, Any] = {
        "hide_parameters": True,
        "pool_size": 20,
        "max_overflow": 20,
        "pool_timeout": WAIT_SECONDS,
    }
    if url.startswith("sqlite"):
        options["connect_args"] = {"check_same_thread": False, "timeout": WAIT_SECONDS}
    else:
        options["pool_pre_ping"] = True
        options["connect_args"] = {"connect_timeout": int(WAIT_SECONDS)}
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    else:
        _configure_postgresql(engine)
    return Database(engine)


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(WAIT_SECONDS * 1000)}")
            cursor.execute(f"SET statement_timeout = {int(WAIT_SECONDS * 2000)}")
        dbapi_connection.commit()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (so BEGIN IMMEDIATE
        # below really takes the write lock), and keep every commit durable.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(WAIT_SECONDS * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front (no lock upgrades, no SQLITE_BUSY mid-way);
        # readers read a WAL snapshot beside them.
        if connection.get_execution_options().get("openkms_readonly"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
