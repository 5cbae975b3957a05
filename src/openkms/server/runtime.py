"""Start-up: open storage, open the root of trust, make the first account, wire the services."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from openkms.audit import AuditSink, LogAuditSink
from openkms.audit.cloudtrail import CloudTrailRenderer
from openkms.audit.store import AuditStore, audit_url
from openkms.audit.writer import DurableAuditSink
from openkms.auth.authenticator import Authenticator
from openkms.authz import PolicyAuthorizer
from openkms.authz.grants import GrantDirectory
from openkms.authz.identity import IdentityPolicies
from openkms.clock import Clock, clock_from_environment
from openkms.iam.accounts import (
    IssuedCredentials,
    ensure_account_with_key_in,
    is_account_id,
    new_access_key_id,
    new_account_id,
    new_secret_access_key,
)
from openkms.iam.sts import SecurityTokenService
from openkms.jobs import JobRunner, LifecycleJobs
from openkms.keystore import IntegrityError, SoftwareKeyStore
from openkms.model import ServiceModel, load_kms_model
from openkms.ops import DECLARATIONS, HANDLERS
from openkms.ops.context import Services
from openkms.ops.dispatcher import DeclarationError, Dispatcher
from openkms.ops.key_directory import KeyDirectory
from openkms.ops.quotas import RequestQuotas
from openkms.seal import RootKey
from openkms.seal.dev_root_key import open_dev_root_key
from openkms.seal.secrets import unwrap_secret, wrap_secret
from openkms.server.change_feed import ChangeFollower, SharedSequence
from openkms.server.config import ServerConfig, is_loopback
from openkms.storage import Database, open_database
from openkms.storage.repository import Transaction

log = logging.getLogger(__name__)

_ROOT_CHECK = "root-key-check"
_ROOT_CHECK_VALUE = b"openkms root key check"
_FIRST_ACCOUNT = "first-account"
# The node's shared change-log counter (openkms.server.change_feed), in the data directory.
CHANGE_SEQUENCE_FILE = "changes.seq"


class StartupError(RuntimeError):
    """The server cannot start; the message says why and what to do."""


@dataclass
class Runtime:
    config: ServerConfig
    model: ServiceModel
    services: Services
    authenticator: Authenticator
    dispatcher: Dispatcher
    audit: AuditSink
    changes: ChangeFollower
    jobs: JobRunner
    first_credentials: IssuedCredentials | None
    sts: SecurityTokenService | None = None

    def close(self) -> None:
        """Release what the runtime holds: the jobs, the change feed, the log, the database."""
        self.jobs.stop()
        self.changes.close()
        self.audit.close()
        self.services.db.dispose()

    def forget_first_secret(self) -> None:
        """Drop the first account's secret from memory once it has been shown."""
        if self.first_credentials is not None:
            self.first_credentials = self.first_credentials.without_secret()


def open_storage(config: ServerConfig, migrate: bool = True) -> tuple[Database, RootKey]:
    """The (migrated) database and the root of trust that matches it."""
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        root_key = open_dev_root_key(config.effective_root_key_file)
    except (OSError, RuntimeError, ValueError) as error:
        raise StartupError(f"cannot load the root key: {error}") from None
    try:
        db = open_database(config.effective_database_url)
        if migrate:
            db.migrate()
    except Exception as error:  # any failure to open storage stops start-up, with its reason
        raise StartupError(f"cannot open the database: {type(error).__name__}: {error}") from None
    with db.transaction() as tx:
        tx.serialise_startup()
        _check_root_key(tx, root_key)
    return db, root_key


def build_runtime(
    config: ServerConfig, clock: Clock | None = None, first_start: bool = True
) -> Runtime:
    """Everything a server process needs. ``first_start`` runs the once-per-start work
    (migrations, the first account); worker processes of a started server skip it."""
    if clock is None:
        if os.environ.get("OPENKMS_CLOCK_FILE"):
            # Moving the clock makes keys rotate and deletions happen: a test-only control,
            # refused on any server reachable beyond this machine.
            if not is_loopback(config.host):
                raise StartupError("OPENKMS_CLOCK_FILE is for tests: refused off loopback")
            if first_start:
                log.warning("OPENKMS_CLOCK_FILE is set: the clock is shifted (for tests only)")
        clock = clock_from_environment()
    db, root_key = open_storage(config, migrate=first_start)
    credentials = _first_account(config, db, root_key, clock) if first_start else None
    services = Services(
        db=db,
        keystore=SoftwareKeyStore(root_key),
        clock=clock,
        keys=KeyDirectory(db, config.cache_seconds),
    )
    identities = IdentityPolicies(db, config.cache_seconds)
    services.authorizer = PolicyAuthorizer(identities, GrantDirectory(db, config.cache_seconds))
    authenticator = Authenticator(
        db, root_key, clock, config.region_allowed, cache_seconds=config.cache_seconds
    )
    sts = SecurityTokenService(db, root_key, authenticator.session_tokens, clock, identities)
    model = load_kms_model()
    try:
        dispatcher = Dispatcher(
            model,
            services,
            authenticator,
            services.authorizer,
            DECLARATIONS,
            HANDLERS,
            RequestQuotas(config.quotas, config.workers),
        )
    except DeclarationError as error:
        db.dispose()
        raise StartupError(f"the operation declarations are inconsistent: {error}") from None
    try:
        audit = open_audit_sink(config, root_key, clock, model, first_start)
    except StartupError:
        db.dispose()
        raise
    changes = ChangeFollower(db, SharedSequence(config.data_dir / CHANGE_SEQUENCE_FILE))
    jobs = JobRunner(LifecycleJobs(db, services.keystore, clock), config.job_interval_seconds)
    return Runtime(
        config,
        model,
        services,
        authenticator,
        dispatcher,
        audit,
        changes,
        jobs,
        credentials,
        sts,
    )


def open_audit_store(config: ServerConfig, create: bool = False) -> AuditStore:
    """The trail's store (``openkms.audit.store``) beside this configuration's key store."""
    return AuditStore(audit_url(config.effective_database_url), create=create)


def open_audit_sink(
    config: ServerConfig, root_key: RootKey, clock: Clock, model: ServiceModel, first_start: bool
) -> AuditSink:
    """The durable trail (made and migrated on a first start; opened, never made, by worker
    processes), or only the request log when the trail is switched off."""
    if not config.audit_trail:
        if first_start:
            log.warning("the audit trail is off (--no-audit-trail): requests are not recorded")
        return LogAuditSink()
    try:
        store = open_audit_store(config, create=first_start)
        if first_start:
            store.migrate()
            key = store.ensure_signing_key(root_key, clock.now())
        else:
            key = store.signing_key(root_key)
    except Exception as error:  # any failure to open the trail stops start-up, with its reason
        raise StartupError(
            f"cannot open the audit trail: {type(error).__name__}: {error}"
        ) from None
    return DurableAuditSink(
        store, CloudTrailRenderer(model), key, clock, config.audit_digest_seconds, LogAuditSink()
    )


def _check_root_key(tx: Transaction, root_key: RootKey) -> None:
    """Refuse to start with a root key that did not wrap this database's material."""
    stored = tx.get_setting(_ROOT_CHECK)
    if stored is None:
        tx.put_setting(_ROOT_CHECK, wrap_secret(root_key, _ROOT_CHECK, _ROOT_CHECK_VALUE))
        return
    try:
        unwrap_secret(root_key, _ROOT_CHECK, stored)
    except IntegrityError:
        raise StartupError(
            "the root key does not match this database: every node of a cluster needs the "
            "same root key (--root-key-file)"
        ) from None


def _first_account(
    config: ServerConfig, db: Database, root_key: RootKey, clock: Clock
) -> IssuedCredentials | None:
    """Create the first account and access key on first start (fixed by the environment if
    OPENKMS_ACCOUNT_ID / OPENKMS_ACCESS_KEY_ID / OPENKMS_SECRET_ACCESS_KEY are set).

    One transaction under the start-up lock: nodes starting together make one first account,
    and a crash leaves either all of it (account, key, the note that it exists) or none."""
    fixed = config.account_id or config.access_key_id or config.secret_access_key
    if fixed:
        if not (config.access_key_id and config.secret_access_key):
            raise StartupError(
                "OPENKMS_ACCESS_KEY_ID and OPENKMS_SECRET_ACCESS_KEY must be set together"
            )
        account_id = config.account_id or "000000000000"
        if not is_account_id(account_id):
            raise StartupError("OPENKMS_ACCOUNT_ID must be 12 digits")
        credentials = (account_id, config.access_key_id, config.secret_access_key)
    else:
        credentials = (new_account_id(), new_access_key_id(), new_secret_access_key())
    with db.transaction() as tx:
        tx.serialise_startup()
        if not fixed and tx.get_setting(_FIRST_ACCOUNT) is not None:
            return None
        try:
            issued = ensure_account_with_key_in(tx, root_key, clock, *credentials)
        except ValueError as error:
            raise StartupError(str(error)) from None
        if tx.get_setting(_FIRST_ACCOUNT) is None:
            tx.put_setting(_FIRST_ACCOUNT, issued.account_id.encode())
    return issued


def config_from_environment(**overrides: object) -> dict[str, object]:
    """The OPENKMS_* variables that fix the first account, merged under explicit overrides."""
    values: dict[str, object] = {
        "account_id": os.environ.get("OPENKMS_ACCOUNT_ID"),
        "access_key_id": os.environ.get("OPENKMS_ACCESS_KEY_ID"),
        "secret_access_key": os.environ.get("OPENKMS_SECRET_ACCESS_KEY"),
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return values
