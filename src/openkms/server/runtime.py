"""Start-up: open storage, open the root of trust, make the first account, wire the services."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from openkms.audit import AuditSink, LogAuditSink
from openkms.audit.cloudtrail import CloudTrailRenderer
from openkms.audit.key_usage import KeyUsage
from openkms.audit.log_files import ensure_log_file_key
from openkms.audit.node_client import NodeTrailClient
from openkms.audit.node_protocol import SOCKET_ENV
from openkms.audit.signing import DeferredSigningKey, SigningKey
from openkms.audit.store import AuditStore, audit_url
from openkms.audit.trail_api import TrailApi
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
from openkms.iam.admin_api import IamAdministration
from openkms.iam.sts import SecurityTokenService
from openkms.jobs import JobRunner, LifecycleJobs
from openkms.keystore import IntegrityError, SoftwareKeyStore
from openkms.keystore.clusters import ClusterConfigError, clusters_from_environment
from openkms.keystore.router import KeyStoreRouter
from openkms.keystore.token_keys import TokenKeys
from openkms.metrics import directory as metrics_directory
from openkms.metrics.recorder import Metrics, Sources
from openkms.model import ServiceModel, load_kms_model
from openkms.ops import DECLARATIONS, HANDLERS
from openkms.ops.context import Services
from openkms.ops.custom_key_stores import close_changed_stores, store_login
from openkms.ops.dispatcher import DeclarationError, Dispatcher
from openkms.ops.key_directory import KeyDirectory
from openkms.ops.quotas import RequestQuotas
from openkms.seal import RootKey
from openkms.seal.dev_root_key import open_dev_root_key
from openkms.seal.keyring import Keyring
from openkms.seal.node_state import (
    BOOT_KEY_ENV,
    NodeSealState,
    NodeState,
    boot_key_from_environment,
)
from openkms.seal.operator import (
    ROOT_CHECK_SETTING,
    ROOT_CHECK_VALUE,
    newer_generations,
    read_keyring,
)
from openkms.seal.pkcs11_seal import Pkcs11Seal, TokenError
from openkms.seal.seal_config import PKCS11, SealConfig, read_seal_config
from openkms.seal.sealable import SealableRootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret
from openkms.server.change_feed import ChangeFollower, SharedSequence
from openkms.server.config import ServerConfig, is_loopback
from openkms.server.data_dir import DataDirectoryError, prepare_data_dir
from openkms.server.seal_control import SealControl
from openkms.storage import Database, open_database
from openkms.storage.repository import Transaction

log = logging.getLogger(__name__)

_ROOT_CHECK = ROOT_CHECK_SETTING
_ROOT_CHECK_VALUE = ROOT_CHECK_VALUE
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
    iam_admin: IamAdministration | None = None
    # The node's seal (Shamir or PKCS#11); None for the development key file.
    seal: SealControl | None = None
    # CloudTrail's LookupEvents and ListPublicKeys on the trail; None with the trail off.
    trail_api: TrailApi | None = None
    # This process's metrics (openkms.metrics); written to the start's multiprocess
    # directory when there is one.
    metrics: Metrics | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def start_metrics(self, serving: bool = True) -> None:
        """Sample what the metrics report off the request path (a thread)."""
        if self.metrics is None:
            return
        audit, db, keys, seal = self.audit, self.services.db, self.services.keys, self.seal
        sources = Sources(
            audit_queue_depth=lambda: int(getattr(audit, "queue_depth", 0)),
            pool_in_use=db.pool_in_use,
            sealed=lambda: seal is not None and seal.sealed,
            jobs=self.jobs.stats,
            cache=lambda: (keys.hits, keys.misses),
        )
        self.metrics.start(sources, self.started_at, serving)

    def stop_metrics(self) -> None:
        if self.metrics is not None:
            self.metrics.stop()

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
    """The (migrated) database and the root of trust that matches it: the development key
    file, or the keyring under its seal (opened through the token for PKCS#11; still sealed
    for Shamir shares)."""
    try:
        prepare_data_dir(config.data_dir)
    except DataDirectoryError as error:
        raise StartupError(str(error)) from None
    try:
        db = open_database(config.effective_database_url)
        if migrate:
            db.migrate()
    except Exception as error:  # any failure to open storage stops start-up, with its reason
        raise StartupError(f"cannot open the database: {type(error).__name__}: {error}") from None
    with db.transaction() as tx:
        tx.serialise_startup()
        seal_config = read_seal_config(tx)
        if seal_config is not None:
            return db, _sealed_root_key(db, tx, seal_config)
    if not is_loopback(config.host):
        db.dispose()
        raise StartupError(
            "with the development root key openkms listens on loopback only "
            f"(127.0.0.1, ::1 or localhost), not {config.host}: seal the store with "
            "openkms operator init --seal shamir or --seal pkcs11"
        )
    try:
        root_key = open_dev_root_key(config.effective_root_key_file)
    except (OSError, RuntimeError, ValueError) as error:
        db.dispose()
        raise StartupError(f"cannot load the root key: {error}") from None
    with db.transaction() as tx:
        tx.serialise_startup()
        _check_root_key(tx, root_key)
    return db, root_key


def store_is_sealed(data_dir: Path, database_url: str | None) -> bool:
    """Whether a store has a seal (Shamir or PKCS#11), read without changing anything: a
    store that does not exist yet is not made."""
    config = ServerConfig(data_dir=data_dir, database_url=database_url)
    if database_url is None and not (data_dir / "openkms.db").exists():
        return False
    try:
        db = open_database(config.effective_database_url)
    except Exception:  # noqa: BLE001 - start-up reports the database's failure itself
        return False
    try:
        with db.transaction() as tx:
            return read_seal_config(tx) is not None
    except Exception:  # noqa: BLE001 - an empty database has no settings table yet
        return False
    finally:
        db.dispose()


def _sealed_root_key(db: Database, tx: Transaction, seal_config: SealConfig) -> SealableRootKey:
    root = SealableRootKey(seal_config.type)

    def find_newer(keyring: Keyring) -> Keyring:
        with db.transaction() as reading:
            return newer_generations(reading, keyring)

    root.find_newer = find_newer
    if seal_config.type == PKCS11:
        assert seal_config.pkcs11 is not None
        try:
            token = Pkcs11Seal(seal_config.pkcs11)
        except TokenError as error:
            raise StartupError(f"cannot unseal through the PKCS#11 token: {error}") from None
        try:
            root.unseal(read_keyring(tx, seal_config, token), token)
        except IntegrityError:
            token.close()
            raise StartupError(
                "the token's key does not open this store's keyring (another token or key?)"
            ) from None
    return root


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
    try:
        clusters = clusters_from_environment()
    except ClusterConfigError as error:
        raise StartupError(f"OPENKMS_CLOUDHSM_CLUSTERS: {error}") from None
    db, root_key = open_storage(config, migrate=first_start)
    sealed = isinstance(root_key, SealableRootKey) and root_key.sealed
    # A sealed store's first account was made by openkms operator init.
    credentials = first_account(config, db, root_key, clock) if first_start and not sealed else None
    # Keys in custom key stores live in their tokens; the router sends their handles there.
    tokens = TokenKeys(store_login(db, root_key, clusters))
    db.add_change_listener(close_changed_stores(tokens))
    services = Services(
        db=db,
        keystore=KeyStoreRouter(SoftwareKeyStore(root_key), tokens),
        clock=clock,
        keys=KeyDirectory(db, config.cache_seconds),
        root_key=root_key,
        clusters=clusters,
        tokens=tokens,
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
    seal = _seal_control(config, db, root_key, services, authenticator, first_start)
    try:
        audit = open_audit_sink(config, root_key, clock, model, first_start, seal)
    except StartupError:
        db.dispose()
        raise
    changes = ChangeFollower(db, SharedSequence(config.data_dir / CHANGE_SEQUENCE_FILE))

    def sealed_now() -> bool:
        # Also how an idle worker follows a seal: within a job interval, not at its next
        # request, it drops the root key.
        if seal is not None and seal.is_behind():
            seal.refresh()
        return isinstance(root_key, SealableRootKey) and root_key.sealed

    jobs = JobRunner(
        LifecycleJobs(db, services.keystore, clock, audit),
        config.job_interval_seconds,
        sealed_now,
        clock.now,
    )
    runtime = Runtime(
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
        IamAdministration(db, root_key, clock, identities),
        seal,
    )
    runtime.started_at = clock.now()
    runtime.metrics = _metrics()
    if isinstance(audit, DurableAuditSink):
        audit.on_commit = runtime.metrics.audit_written
    if config.audit_trail:
        runtime.trail_api = TrailApi(open_audit_store(config), identities, clock)
        services.key_usage = KeyUsage(open_audit_store(config), model)
    if seal is not None:
        seal.refresh()
    return runtime


def _metrics() -> Metrics:
    # In multiprocess mode values live in the start's directory, not in a registry; without
    # one (a test's in-process runtime) they stay in a registry of their own.
    if metrics_directory.current() is not None:
        return Metrics()
    from prometheus_client import CollectorRegistry

    return Metrics(CollectorRegistry())


def _seal_control(
    config: ServerConfig,
    db: Database,
    root_key: RootKey,
    services: Services,
    authenticator: Authenticator,
    first_start: bool,
) -> SealControl | None:
    """The node's seal control for a sealed store. The first process of a start makes the
    boot key (memory only; its spawned workers inherit it) and starts the node's state anew:
    sealed for Shamir, unsealed (through the token) for PKCS#11."""
    if not isinstance(root_key, SealableRootKey):
        return None
    boot_key = None if first_start else boot_key_from_environment()
    if boot_key is None:
        boot_key = os.urandom(32)
        os.environ[BOOT_KEY_ENV] = boot_key.hex()
    state = NodeSealState(config.data_dir, boot_key)
    if first_start:
        state.update(lambda _: NodeState(sealed=root_key.sealed))

    def forget_secrets() -> None:
        services.keystore.forget_secrets()
        authenticator.forget_secrets()

    return SealControl(db, root_key, state, forget_secrets)


def open_audit_store(config: ServerConfig, create: bool = False) -> AuditStore:
    """The trail's store (``openkms.audit.store``) beside this configuration's key store."""
    return AuditStore(audit_url(config.effective_database_url), create=create)


def open_audit_sink(
    config: ServerConfig,
    root_key: RootKey,
    clock: Clock,
    model: ServiceModel,
    first_start: bool,
    seal: SealControl | None = None,
) -> AuditSink:
    """The durable trail (made and migrated on a first start; opened, never made, by worker
    processes), or only the request log when the trail is switched off. A worker of several
    sends its records to its node's one writer, in the supervisor, when it names one."""
    if not config.audit_trail:
        if first_start:
            log.warning("the audit trail is off (--no-audit-trail): requests are not recorded")
        return LogAuditSink(log_format=config.log_format)
    node_writer = os.environ.get(SOCKET_ENV)
    if node_writer and not first_start:
        try:
            return NodeTrailClient(
                node_writer, CloudTrailRenderer(model), LogAuditSink(log_format=config.log_format)
            )
        except OSError as error:
            raise StartupError(f"cannot reach the node's audit trail writer: {error}") from None
    try:
        store = open_audit_store(config, create=first_start)
        if first_start:
            store.migrate()
        key: SigningKey | DeferredSigningKey
        if isinstance(root_key, SealableRootKey) and root_key.sealed:
            # Opened once unsealed; a sealed node runs nothing and writes nothing to the trail.
            key = DeferredSigningKey(functools.partial(_trail_key, store, root_key, clock, seal))
        elif first_start:
            key = store.ensure_signing_key(root_key, clock.now())
            ensure_log_file_key(store, root_key, clock.now())  # for export-logs' digests
        else:
            key = store.signing_key(root_key)
    except Exception as error:  # any failure to open the trail stops start-up, with its reason
        raise StartupError(
            f"cannot open the audit trail: {type(error).__name__}: {error}"
        ) from None
    return DurableAuditSink(
        store,
        CloudTrailRenderer(model),
        key,
        clock,
        config.audit_digest_seconds,
        LogAuditSink(log_format=config.log_format),
    )


def _trail_key(
    store: AuditStore, root_key: RootKey, clock: Clock, seal: SealControl | None
) -> SigningKey:
    if seal is not None and seal.is_behind():
        # The supervisor's node writer: its workers were unsealed, not it.
        seal.refresh()
    return store.ensure_signing_key(root_key, clock.now())


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


def first_account(
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
