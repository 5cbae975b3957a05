"""The ``openkms`` command line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from openkms.config_file import config_option
from openkms.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig, is_loopback
from openkms.server.data_dir import restrict_new_files

if TYPE_CHECKING:
    from openkms.iam.accounts import IssuedCredentials


def _default_data_dir() -> Path:
    return Path(os.environ.get("OPENKMS_DATA_DIR", Path.home() / ".openkms"))


def _home_data_dir() -> Path:
    return Path.home() / ".openkms"


LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_METRICS_LISTEN = "127.0.0.1:9599"


class ListenAddress(click.ParamType):
    """HOST:PORT or ``off``, checked when given (flag, environment or file)."""

    name = "HOST:PORT|off"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from openkms.metrics.listener import parse_listen

        try:
            parse_listen(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)
        return str(value).strip()


@click.group()
@click.version_option(package_name="openkms")
def main() -> None:
    """openkms: a key management service that speaks the AWS KMS API."""
    # Whatever any command writes (databases, keys, shares, exports) is owner-only.
    restrict_new_files()


@main.command()
@config_option
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="OPENKMS_DATA_DIR",
    default=_home_data_dir,
    show_default="~/.openkms",
    help="Where the SQLite database and the development root key live (owner-only, 0700).",
)
@click.option(
    "--database-url",
    envvar="OPENKMS_DATABASE_URL",
    help="postgresql://user@host/db for a cluster; default SQLite in the data directory.",
)
@click.option(
    "--root-key-file",
    envvar="OPENKMS_ROOT_KEY_FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Development root key file (default <data-dir>/root.key); nodes of a cluster share it.",
)
@click.option(
    "--region",
    "regions",
    multiple=True,
    help="Serve only this region (repeatable). Default: any region.",
)
@click.option(
    "--cache-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="The longest a process trusts a cached key, alias or credential (the change feed "
    "invalidates them on every change long before).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="Plain text lines, or JSON lines, for everything the server writes.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1, max=256),
    default=lambda: os.cpu_count() or 1,
    show_default="the number of CPUs",
    help="Worker processes serving one port.",
)
@click.option(
    "--tls-cert-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Serve HTTPS with this certificate chain (PEM); needs --tls-key-file.",
)
@click.option(
    "--tls-key-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The private key (PEM) of --tls-cert-file.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=16),
    default=4096,
    show_default=True,
    help="Open connections per worker; at the cap the longest-idle one makes room.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a whole request (headers and body).",
)
@click.option(
    "--quota",
    "quotas",
    multiple=True,
    metavar="CLASS=N",
    help="Requests per second per account and Region for a class: symmetric (default "
    "10000), rsa (500), ecc (300), management (1000). Repeatable.",
)
@click.option(
    "--job-interval",
    type=click.FloatRange(min=0.1, max=3600),
    default=1.0,
    show_default=True,
    help="Seconds between passes of the lifecycle jobs (rotation, deletion, expiry).",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    help="Allow plain HTTP on a non-loopback address (AWS requires HTTPS of KMS endpoints).",
)
@click.option(
    "--audit-digest-interval",
    type=click.FloatRange(min=1, max=86400),
    default=60.0,
    show_default=True,
    help="Seconds between the audit trail's signed digests (each writer process's).",
)
@click.option(
    "--console-session-lifetime",
    type=click.FloatRange(min=1, max=43200),
    default=900.0,
    show_default=True,
    help="Seconds a web console sign-in lasts (the server's clock decides).",
)
@click.option("--no-console", is_flag=True, help="Do not serve the web console at /console.")
@click.option(
    "--no-audit-trail",
    is_flag=True,
    help="Benchmarks only: answer requests without recording them in the audit trail.",
)
@click.option(
    "--cloudhsm-clusters",
    envvar="OPENKMS_CLOUDHSM_CLUSTERS",
    metavar="ID=LIBRARY:LABEL,…",
    help="PKCS#11 tokens standing in for CloudHSM clusters, for custom key stores: "
    "comma-separated cluster-xxxxxxxxxxx=LIBRARY_PATH:TOKEN_LABEL entries.",
)
@click.option(
    "--metrics-listen",
    envvar="OPENKMS_METRICS_LISTEN",
    type=ListenAddress(),
    default=DEFAULT_METRICS_LISTEN,
    show_default=True,
    help="Where GET /metrics (Prometheus) is served, apart from the API; 'off' disables it.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    regions: tuple[str, ...],
    cache_seconds: float,
    log_level: str,
    log_format: str,
    workers: int,
    tls_cert_file: Path | None,
    tls_key_file: Path | None,
    insecure_http: bool,
    quotas: tuple[str, ...],
    max_connections: int,
    request_timeout: float,
    job_interval: float,
    audit_digest_interval: float,
    console_session_lifetime: float,
    no_console: bool,
    no_audit_trail: bool,
    cloudhsm_clusters: str | None,
    metrics_listen: str,
) -> None:
    """Start the server."""
    from openkms.metrics.listener import open_metrics
    from openkms.ops.quotas import parse_quotas
    from openkms.server.data_dir import DataDirectoryError, prepare_data_dir
    from openkms.server.listener import ListenError, bind_listener
    from openkms.server.log_format import configure_logging
    from openkms.server.runtime import (
        StartupError,
        build_runtime,
        config_from_environment,
        store_is_sealed,
    )
    from openkms.server.serving import serve as run_server

    configure_logging(log_level, log_format)
    try:
        quota_settings = parse_quotas(quotas)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    if (tls_cert_file is None) != (tls_key_file is None):
        raise click.UsageError("--tls-cert-file and --tls-key-file go together")
    if cloudhsm_clusters is not None:
        from openkms.keystore.clusters import (
            ENVIRONMENT_VARIABLE,
            ClusterConfigError,
            parse_clusters,
        )

        try:
            parse_clusters(cloudhsm_clusters)
        except ClusterConfigError as error:
            raise click.BadParameter(str(error), param_hint="'--cloudhsm-clusters'") from None
        # The runtime and the spawned workers read the list from the environment.
        os.environ[ENVIRONMENT_VARIABLE] = cloudhsm_clusters
    sealed = store_is_sealed(data_dir, database_url) if data_dir.is_dir() else False
    if not is_loopback(host) and not sealed:
        raise click.UsageError(
            "with the development root key openkms listens on loopback only "
            f"(127.0.0.1, ::1 or localhost), not {host}: seal the store first "
            "(openkms operator init --seal shamir or --seal pkcs11)"
        )
    if not is_loopback(host) and tls_cert_file is None and not insecure_http:
        raise click.UsageError(
            f"refusing plain HTTP on {host}: give --tls-cert-file and --tls-key-file, "
            "or say --insecure-http"
        )
    config = ServerConfig(
        data_dir=data_dir,
        host=host,
        port=port,
        database_url=database_url,
        root_key_file=root_key_file,
        regions=frozenset(regions),
        cache_seconds=cache_seconds,
        workers=workers,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_key_file,
        insecure_http=insecure_http,
        quotas=quota_settings,
        max_connections=max_connections,
        request_timeout_seconds=request_timeout,
        job_interval_seconds=job_interval,
        audit_trail=not no_audit_trail,
        audit_digest_seconds=audit_digest_interval,
        log_format=log_format,
        console=not no_console,
        console_session_seconds=console_session_lifetime,
        **config_from_environment(),  # type: ignore[arg-type]
    )
    try:
        loose = prepare_data_dir(data_dir)
    except DataDirectoryError as error:
        raise click.ClickException(str(error)) from None
    _check_permissions(loose, data_dir, sealed)
    try:
        listener = bind_listener(host, port)
    except ListenError as error:
        raise click.ClickException(str(error)) from None
    try:
        metrics = open_metrics(metrics_listen, data_dir)
    except ListenError as error:
        listener.close()
        raise click.ClickException(str(error)) from None
    try:
        runtime = build_runtime(config)
    except StartupError as error:
        listener.close()
        if metrics is not None:
            metrics.close()
        raise click.ClickException(str(error)) from None
    if runtime.metrics is not None:
        runtime.metrics.mark_started(runtime.started_at)  # the node's start, for status
    _announce(runtime, config)
    if metrics is not None:
        metrics.start()
        _server_log().info("openkms: metrics on http://%s/metrics", metrics_listen)
    runtime.forget_first_secret()
    try:
        run_server(config, runtime, log_level, listener)
    finally:
        if metrics is not None:
            metrics.close()


def _check_permissions(loose: list[str], data_dir: Path, sealed: bool) -> None:
    """Loose permissions on the data directory: refused under a production root of trust,
    a loud warning with the development key (whose file is in the directory)."""
    if not loose:
        return
    fix = f"chmod 700 {data_dir} and chmod 600 the files in it"
    if sealed:
        raise click.ClickException(
            f"refusing to start: {loose[0]}; the store is sealed for production: {fix}"
        )
    for line in loose:
        _server_log().warning("WARNING: %s", line)
    _server_log().warning("WARNING: other users of this machine may read openkms's data: %s", fix)


def _server_log() -> Any:
    import logging

    return logging.getLogger("openkms")


def _announce(runtime: object, config: ServerConfig) -> None:
    credentials = getattr(runtime, "first_credentials", None)
    scheme = "https" if config.tls else "http"
    endpoint = f"{scheme}://{config.host}:{config.port}"
    out = sys.stdout
    if credentials is not None and credentials.created and config.secret_access_key is None:
        # The one time a secret is shown: the operator has no other way to learn it.
        lines = [
            "openkms: created the first account. Its secret is shown only this once.",
            f"  account id:        {credentials.account_id}",
            f"  access key id:     {credentials.access_key_id}",
            f"  secret access key: {credentials.secret_access_key}",
            "Use it from the AWS CLI:",
            f"  export AWS_ACCESS_KEY_ID={credentials.access_key_id}",
            f"  export AWS_SECRET_ACCESS_KEY={credentials.secret_access_key}",
            "  export AWS_DEFAULT_REGION=us-east-1",
            f"  aws --endpoint-url {endpoint} kms create-key",
            "or from Python (boto3):",
            f"  boto3.client('kms', endpoint_url='{endpoint}', region_name='us-east-1',",
            f"               aws_access_key_id='{credentials.access_key_id}',",
            "               aws_secret_access_key='<the secret above>')",
        ]
        print("\n".join(lines), file=out)
    elif credentials is not None:
        _server_log().info(
            "openkms: account %s, access key %s (secret from OPENKMS_SECRET_ACCESS_KEY)",
            credentials.account_id,
            credentials.access_key_id,
        )
    if getattr(runtime, "seal", None) is None:
        # As Vault's dev mode does: nobody should mistake this for a production set-up.
        _server_log().warning(DEV_ROOT_KEY_WARNING.format(path=config.effective_root_key_file))
    out.flush()
    _server_log().info("openkms: data in %s; listening on %s", config.data_dir, endpoint)


DEV_ROOT_KEY_WARNING = """\
WARNING! The development root key is in use: every key this server holds is protected only by
the plain file {path}. Anyone who can read that file and the database can
read every key. Do not keep anything of value here; for production seal the store with
openkms operator init --seal shamir (key shares) or --seal pkcs11 (an HSM)."""


@main.group("config")
def config_group() -> None:
    """The configuration of openkms serve."""


@config_group.command(
    "show", context_settings={"ignore_unknown_options": True, "allow_extra_args": True}
)
@click.pass_context
def config_show(ctx: click.Context) -> None:
    """Print the configuration serve would run with (secrets redacted), each value's source.

    Takes serve's own options: openkms config show --config openkms.toml --port 5000."""
    from openkms.config_file import as_toml, effective_config

    click.echo(as_toml(effective_config(serve, ctx.args)))


@main.group()
def admin() -> None:
    """Administration of a data directory or database (run beside or instead of a server)."""


@admin.command("create-account")
@click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), default=_default_data_dir
)
@click.option("--database-url", envvar="OPENKMS_DATABASE_URL")
@click.option("--root-key-file", envvar="OPENKMS_ROOT_KEY_FILE", type=click.Path(path_type=Path))
@click.option("--account-id", help="12 digits; default: a new random account id.")
def create_account(
    data_dir: Path, database_url: str | None, root_key_file: Path | None, account_id: str | None
) -> None:
    """Create an account (or a further access key for one) and print it as JSON."""
    from openkms.clock import clock_from_environment
    from openkms.iam.accounts import (
        ensure_account_with_key,
        new_access_key_id,
        new_account_id,
        new_secret_access_key,
    )

    with _admin_storage(data_dir, database_url, root_key_file) as (db, root_key):
        issued = ensure_account_with_key(
            db,
            root_key,
            clock_from_environment(),
            account_id or new_account_id(),
            new_access_key_id(),
            new_secret_access_key(),
        )
    _print_credentials(issued)


@contextlib.contextmanager
def _admin_storage(
    data_dir: Path, database_url: str | None, root_key_file: Path | None
) -> Iterator[tuple[Any, Any]]:
    """The storage of a data directory, as ``(db, root key)``, with a server beside it told
    of each change at once. A refusal of the command (a ``ValueError``: an unknown account,
    a name taken, …) becomes the command's error message, not a traceback."""
    from openkms.server.change_feed import SharedSequence
    from openkms.server.runtime import CHANGE_SEQUENCE_FILE, StartupError, open_storage

    config = ServerConfig(data_dir=data_dir, database_url=database_url, root_key_file=root_key_file)
    try:
        db, root_key = open_storage(config)
    except StartupError as error:
        raise click.ClickException(str(error)) from None
    if getattr(root_key, "sealed", False):
        db.dispose()
        raise click.ClickException(
            "this store is sealed by Shamir shares: admin commands need its root key, which "
            "only an unsealed server holds; use the server's APIs"
        )
    shared = SharedSequence(config.data_dir / CHANGE_SEQUENCE_FILE)
    db.add_sequence_listener(shared.advance)
    try:
        yield db, root_key
    except ValueError as error:
        # An IAM quota is reported with IAM's error code, as the AWS CLI would show it.
        limit = getattr(error, "code", None) == "LimitExceeded"
        raise click.ClickException(f"LimitExceeded: {error}" if limit else str(error)) from None
    finally:
        db.dispose()


def _print_credentials(issued: IssuedCredentials, **first: str) -> None:
    """New credentials as JSON: the only time their secret is shown."""
    fields = {
        "AccountId": issued.account_id,
        **first,
        "Arn": issued.principal_arn,
        "AccessKeyId": issued.access_key_id,
        "SecretAccessKey": issued.secret_access_key,
    }
    click.echo(json.dumps(fields, indent=2))


def _account_options(command: Any) -> Any:
    """--data-dir, --database-url, --root-key-file and --account-id, for admin commands."""
    for option in reversed(
        [
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=_default_data_dir,
            ),
            click.option("--database-url", envvar="OPENKMS_DATABASE_URL"),
            click.option(
                "--root-key-file", envvar="OPENKMS_ROOT_KEY_FILE", type=click.Path(path_type=Path)
            ),
            click.option("--account-id", required=True, help="The account (12 digits)."),
        ]
    ):
        command = option(command)
    return command


def _storage_options(command: Any) -> Any:
    """The account options and --user-name."""
    command = click.option("--user-name", required=True, help="1 to 64 letters, digits or _+=,.@-")(
        command
    )
    return _account_options(command)


@admin.command("create-user")
@_storage_options
def create_user_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str,
) -> None:
    """Create an IAM user in an account, with an access key, and print it as JSON. The user
    may do nothing until a policy (its own, or a key policy naming it) allows it."""
    from openkms.clock import clock_from_environment
    from openkms.iam.users import create_user

    with _admin_storage(data_dir, database_url, root_key_file) as (db, root_key):
        user, issued = create_user(db, root_key, clock_from_environment(), account_id, user_name)
    _print_credentials(issued, UserName=user.user_name, UserId=user.user_id)


@admin.command("put-user-policy")
@_storage_options
@click.option("--policy-name", required=True)
@click.option(
    "--policy-document",
    required=True,
    help="The policy as JSON text, or file://PATH to read it from a file.",
)
def put_user_policy_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str,
    policy_name: str,
    policy_document: str,
) -> None:
    """Attach (or replace) an inline identity policy of a user, as IAM's PutUserPolicy."""
    from openkms.iam.users import put_user_policy

    if policy_document.startswith("file://"):
        policy_document = Path(policy_document.removeprefix("file://")).read_text()
    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        put_user_policy(db, account_id, user_name, policy_name, policy_document)


@admin.command("delete-user-policy")
@_storage_options
@click.option("--policy-name", required=True)
def delete_user_policy_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str,
    policy_name: str,
) -> None:
    """Remove an inline identity policy of a user."""
    from openkms.iam.users import delete_user_policy

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_user_policy(db, account_id, user_name, policy_name)


@admin.command("create-access-key")
@_account_options
@click.option("--user-name", help="The user; without it, the account's root user.")
def create_access_key_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str | None,
) -> None:
    """Create a further access key (at most two each, as IAM) and print it as JSON."""
    from openkms.clock import clock_from_environment
    from openkms.iam.users import create_access_key

    with _admin_storage(data_dir, database_url, root_key_file) as (db, root_key):
        issued = create_access_key(db, root_key, clock_from_environment(), account_id, user_name)
    _print_credentials(issued)


@admin.command("list-access-keys")
@_account_options
@click.option("--user-name", help="The user; without it, the account's root user.")
def list_access_keys_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str | None,
) -> None:
    """List a principal's access keys (never their secrets) as JSON."""
    from openkms.iam.users import list_access_keys

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        keys = list_access_keys(db, account_id, user_name)
    listed = [
        {
            "AccessKeyId": k.access_key_id,
            "Status": k.status,
            "CreateDate": k.created_at.isoformat(),
            "Arn": k.principal_arn,
        }
        for k in keys
    ]
    click.echo(json.dumps({"AccessKeyMetadata": listed}, indent=2))


@admin.command("update-access-key")
@_account_options
@click.option("--access-key-id", required=True)
@click.option("--status", required=True, type=click.Choice(["Active", "Inactive"]))
def update_access_key_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    access_key_id: str,
    status: str,
) -> None:
    """Deactivate or reactivate an access key (effective from the next request)."""
    from openkms.iam.users import set_access_key_status

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        set_access_key_status(db, account_id, access_key_id, status)


@admin.command("delete-access-key")
@_account_options
@click.option("--access-key-id", required=True)
def delete_access_key_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    access_key_id: str,
) -> None:
    """Delete an access key for good."""
    from openkms.iam.users import delete_access_key

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_access_key(db, account_id, access_key_id)


def _document(text: str) -> str:
    """A policy given as JSON text, or as file://PATH (as the AWS CLI takes one)."""
    if not text.startswith("file://"):
        return text
    path = Path(text.removeprefix("file://"))
    try:
        return path.read_text()
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from None


def _role_options(command: Any) -> Any:
    """The account options and --role-name."""
    command = click.option("--role-name", required=True, help="1 to 64 letters, digits or _+=,.@-")(
        command
    )
    return _account_options(command)


@admin.command("create-role")
@_role_options
@click.option(
    "--assume-role-policy-document",
    required=True,
    help="The trust policy (who may assume the role) as JSON text, or file://PATH.",
)
@click.option(
    "--max-session-duration",
    type=int,
    default=3600,
    show_default=True,
    help="The longest session AssumeRole may give, in seconds (3600 to 43200).",
)
def create_role_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    role_name: str,
    assume_role_policy_document: str,
    max_session_duration: int,
) -> None:
    """Create an IAM role and print it as JSON. Callers its trust policy admits may assume it
    (STS AssumeRole); its sessions may do what its policies (put-role-policy) allow."""
    from openkms.clock import clock_from_environment
    from openkms.iam.roles import create_role

    document = _document(assume_role_policy_document)
    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        role = create_role(
            db, clock_from_environment(), account_id, role_name, document, max_session_duration
        )
    fields = {
        "AccountId": role.account_id,
        "RoleName": role.role_name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "MaxSessionDuration": role.max_session_duration,
    }
    click.echo(json.dumps(fields, indent=2))


@admin.command("put-role-policy")
@_role_options
@click.option("--policy-name", required=True)
@click.option("--policy-document", required=True, help="The policy as JSON text, or file://PATH.")
def put_role_policy_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    role_name: str,
    policy_name: str,
    policy_document: str,
) -> None:
    """Attach (or replace) an inline identity policy of a role, as IAM's PutRolePolicy."""
    from openkms.iam.roles import put_role_policy

    document = _document(policy_document)
    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        put_role_policy(db, account_id, role_name, policy_name, document)


@admin.command("delete-role-policy")
@_role_options
@click.option("--policy-name", required=True)
def delete_role_policy_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    role_name: str,
    policy_name: str,
) -> None:
    """Remove an inline identity policy of a role."""
    from openkms.iam.roles import delete_role_policy

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_role_policy(db, account_id, role_name, policy_name)


@admin.command("delete-role")
@_role_options
def delete_role_command(
    data_dir: Path, database_url: str | None, root_key_file: Path | None, account_id: str,
    role_name: str,
) -> None:  # fmt: skip
    """Delete a role (refused while it has policies, as IAM's DeleteConflict). Its sessions
    stay valid until they expire, with none of its policies."""
    from openkms.iam.roles import delete_role

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_role(db, account_id, role_name)


@admin.command("delete-user")
@_storage_options
def delete_user_command(
    data_dir: Path, database_url: str | None, root_key_file: Path | None, account_id: str,
    user_name: str,
) -> None:  # fmt: skip
    """Delete a user (refused while it has access keys, policies or MFA devices, as IAM's
    DeleteConflict)."""
    from openkms.iam.roles import delete_user

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_user(db, account_id, user_name)


def _tags(values: tuple[str, ...]) -> list[tuple[str, str]]:
    tags = []
    for value in values:
        key, sep, tag_value = value.partition("=")
        if not sep:
            raise click.ClickException(f"a tag is KEY=VALUE, not {value!r}")
        tags.append((key, tag_value))
    return tags


def _tag_command(kind: str) -> Any:
    options = _role_options if kind == "role" else _storage_options

    @options
    @click.option("--tag", "tags", multiple=True, required=True, help="KEY=VALUE (repeatable).")
    def command(
        data_dir: Path,
        database_url: str | None,
        root_key_file: Path | None,
        account_id: str,
        tags: tuple[str, ...],
        **names: str,
    ) -> None:
        from openkms.iam.roles import tag_principal

        parsed = _tags(tags)
        with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
            tag_principal(db, account_id, kind, names[f"{kind}_name"], parsed)

    command.__doc__ = (
        f"Add (or replace) principal tags of a {kind}: aws:PrincipalTag/<key> in policies. At "
        "most 50; keys 1 to 128 characters, values up to 256; keys ignore case."
    )
    return command


def _untag_command(kind: str) -> Any:
    options = _role_options if kind == "role" else _storage_options

    @options
    @click.option("--tag-key", "keys", multiple=True, required=True, help="Repeatable.")
    def command(
        data_dir: Path,
        database_url: str | None,
        root_key_file: Path | None,
        account_id: str,
        keys: tuple[str, ...],
        **names: str,
    ) -> None:
        from openkms.iam.roles import untag_principal

        with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
            untag_principal(db, account_id, kind, names[f"{kind}_name"], list(keys))

    command.__doc__ = f"Remove principal tags of a {kind} (a key it does not have is no error)."
    return command


admin.command("tag-user")(_tag_command("user"))
admin.command("untag-user")(_untag_command("user"))
admin.command("tag-role")(_tag_command("role"))
admin.command("untag-role")(_untag_command("role"))


@admin.command("create-virtual-mfa-device")
@_storage_options
@click.option("--device-name", required=True, help="1 to 226 letters, digits or _+=,.@-")
def create_virtual_mfa_device_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    account_id: str,
    user_name: str,
    device_name: str,
) -> None:
    """Create a virtual (TOTP) MFA device for a user and print its serial number and Base32
    seed as JSON: the only time the seed is shown. Enable it with enable-mfa-device."""
    from openkms.clock import clock_from_environment
    from openkms.iam.mfa import create_virtual_mfa_device

    with _admin_storage(data_dir, database_url, root_key_file) as (db, root_key):
        serial, seed = create_virtual_mfa_device(
            db, root_key, clock_from_environment(), account_id, user_name, device_name
        )
    click.echo(json.dumps({"SerialNumber": serial, "Base32StringSeed": seed}, indent=2))


def _mfa_storage_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=_default_data_dir,
            ),
            click.option("--database-url", envvar="OPENKMS_DATABASE_URL"),
            click.option(
                "--root-key-file", envvar="OPENKMS_ROOT_KEY_FILE", type=click.Path(path_type=Path)
            ),
            click.option(
                "--serial-number", required=True, help="arn:aws:iam::<account>:mfa/<name>"
            ),
        ]
    ):
        command = option(command)
    return command


@admin.command("enable-mfa-device")
@_mfa_storage_options
@click.option("--code1", required=True, help="A code the authenticator shows.")
@click.option("--code2", required=True, help="The next code it shows.")
def enable_mfa_device_command(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    serial_number: str,
    code1: str,
    code2: str,
) -> None:
    """Enable a virtual MFA device with two consecutive codes (as IAM's EnableMFADevice)."""
    from openkms.clock import clock_from_environment
    from openkms.iam.mfa import enable_mfa_device

    with _admin_storage(data_dir, database_url, root_key_file) as (db, root_key):
        enable_mfa_device(db, root_key, clock_from_environment(), serial_number, code1, code2)


@admin.command("delete-virtual-mfa-device")
@_mfa_storage_options
def delete_virtual_mfa_device_command(
    data_dir: Path, database_url: str | None, root_key_file: Path | None, serial_number: str
) -> None:
    """Delete a virtual MFA device (its seed with it)."""
    from openkms.iam.mfa import delete_virtual_mfa_device

    with _admin_storage(data_dir, database_url, root_key_file) as (db, _):
        delete_virtual_mfa_device(db, serial_number)


# -- operator: the root of trust -------------------------------------------------------


@main.group()
def operator() -> None:
    """Initialise a store's seal, unseal, seal and rotate its root key."""


def _seal_storage_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=_default_data_dir,
            ),
            click.option("--database-url", envvar="OPENKMS_DATABASE_URL"),
            click.option(
                "--root-key-file",
                envvar="OPENKMS_ROOT_KEY_FILE",
                type=click.Path(path_type=Path),
                help="A development key file whose data the new seal adopts.",
            ),
        ]
    ):
        command = option(command)
    return command


@operator.command("init")
@_seal_storage_options
@click.option("--seal", "seal_type", required=True, type=click.Choice(["shamir", "pkcs11"]))
@click.option("--shares", default=5, show_default=True, type=int)
@click.option("--threshold", default=3, show_default=True, type=int)
@click.option(
    "--share-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write share i to DIR/share-i.txt (mode 0600) instead of printing them.",
)
@click.option("--pkcs11-library", help="The PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).")
@click.option("--token-label")
@click.option("--pin-file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--key-label", default="openkms-seal", show_default=True)
def operator_init(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    seal_type: str,
    shares: int,
    threshold: int,
    share_dir: Path | None,
    pkcs11_library: str | None,
    token_label: str | None,
    pin_file: Path | None,
    key_label: str,
) -> None:
    """Create the keyring, seal it, and make the first account."""
    from openkms.clock import clock_from_environment
    from openkms.seal.operator import SealError, init_pkcs11, init_shamir
    from openkms.seal.pkcs11_seal import TokenError
    from openkms.seal.seal_config import Pkcs11Location
    from openkms.server.runtime import StartupError, config_from_environment, first_account
    from openkms.storage import open_database

    config = ServerConfig(
        data_dir=data_dir,
        database_url=database_url,
        root_key_file=root_key_file,
        **config_from_environment(),  # type: ignore[arg-type]
    )
    if share_dir is not None and seal_type != "shamir":
        raise click.UsageError("--share-dir is for --seal shamir")
    if seal_type == "pkcs11" and not (pkcs11_library and token_label and pin_file):
        raise click.UsageError("--seal pkcs11 needs --pkcs11-library, --token-label and --pin-file")
    if share_dir is not None:
        # Checked first: shares that cannot be written once the keyring exists are lost.
        taken = [p for p in _share_paths(share_dir, shares) if p.exists()]
        if taken:
            raise click.UsageError(f"{taken[0]} exists: give an empty --share-dir")
    data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(config.effective_database_url)
    try:
        db.migrate()
        texts: list[str] = []
        if seal_type == "shamir":
            texts, keyring = init_shamir(db, shares, threshold, config.effective_root_key_file)
        else:
            assert pkcs11_library and token_label and pin_file
            location = Pkcs11Location(
                pkcs11_library, token_label, key_label, str(pin_file.resolve())
            )
            keyring = init_pkcs11(db, location, config.effective_root_key_file)
        issued = first_account(config, db, keyring.root_key(), clock_from_environment())
    except (SealError, TokenError, StartupError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        db.dispose()
    click.echo(f"openkms: the store is initialised, sealed by {seal_type}.")
    if texts:
        _hand_out_shares(texts, threshold, share_dir)
    if issued is not None and issued.created and config.secret_access_key is None:
        click.echo("The first account (its secret is shown only this once):")
        _print_credentials(issued)
    if config.effective_root_key_file.exists():
        click.echo(
            f"openkms: {config.effective_root_key_file} is no longer used: its key is the "
            "keyring's first generation now. Delete it once you have checked the store."
        )


def _hand_out_shares(texts: list[str], threshold: int, share_dir: Path | None) -> None:
    if share_dir is None:
        click.echo(f"Unseal shares ({threshold} of {len(texts)} unseal; shown only this once):")
        for index, text in enumerate(texts, 1):
            click.echo(f"  share {index}: {text}")
        return
    share_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path, text in zip(_share_paths(share_dir, len(texts)), texts, strict=True):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
    click.echo(f"Wrote {len(texts)} shares to {share_dir} ({threshold} unseal): hand them out.")


def _share_paths(share_dir: Path, count: int) -> list[Path]:
    return [share_dir / f"share-{index}.txt" for index in range(1, count + 1)]


def _seal_api(
    endpoint: str,
    path: str,
    body: dict[str, Any] | None,
    signed: bool = False,
    method: str = "POST",
) -> dict[str, Any]:
    """Call the seal API; a refusal becomes the command's error."""
    import urllib.error
    import urllib.request

    data = json.dumps(body or {}).encode() if method == "POST" else None
    headers = {"Content-Type": "application/json"}
    if not endpoint.startswith(("http://", "https://")):
        raise click.UsageError("--endpoint must be an http:// or https:// URL")
    url = endpoint.rstrip("/") + path
    if signed:
        import botocore.session
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise click.ClickException("no AWS credentials (the operator account's root user)")
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        region = session.get_config_variable("region") or "us-east-1"
        SigV4Auth(credentials, "kms", region).add_auth(request)
        headers = dict(request.headers.items())
    call = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        # Only http(s) reaches here (checked above).
        with urllib.request.urlopen(call, timeout=30) as answer:  # noqa: S310
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"cannot reach {endpoint}: {type(error).__name__}") from None
    try:
        reply: dict[str, Any] = json.loads(text)
    except ValueError:
        raise click.ClickException(f"{endpoint} answered {status}") from None
    if status != 200:
        raise click.ClickException(f"{reply.get('__type')}: {reply.get('message')}")
    return reply


def _show_status(reply: dict[str, Any]) -> None:
    if reply.get("sealed"):
        click.echo(
            f"sealed: {reply.get('progress', 0)} of {reply.get('threshold')} shares given "
            f"({reply.get('shares')} exist)"
        )
    else:
        click.echo("unsealed")


_endpoint_option = click.option(
    "--endpoint", required=True, help="The server, e.g. http://127.0.0.1:4599"
)


@operator.command("unseal")
@_endpoint_option
@click.option("--reset", is_flag=True, help="Forget the shares given so far.")
def operator_unseal(endpoint: str, reset: bool) -> None:
    """Give one share (read from standard input, or asked for without echo)."""
    if reset:
        _show_status(_seal_api(endpoint, "/sys/unseal", {"reset": True}))
        return
    status = _seal_api(endpoint, "/sys/seal-status", None, method="GET")
    body: dict[str, Any] = {}
    if status.get("type") == "shamir":
        if sys.stdin.isatty():
            share = click.prompt("Unseal share", hide_input=True)
        else:
            share = sys.stdin.readline()
        body["share"] = share.strip()
    _show_status(_seal_api(endpoint, "/sys/unseal", body))


@operator.command("status")
@_endpoint_option
def operator_status(endpoint: str) -> None:
    """Whether the server is sealed, and how many shares it has."""
    _show_status(_seal_api(endpoint, "/sys/seal-status", None, method="GET"))


@main.command("status")
@_endpoint_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
def status(endpoint: str, output_format: str) -> None:
    """A running server's status: version, uptime, root of trust and seal, database, workers,
    keys by state, audit chain head, background jobs. Signed by the operator account's root
    user (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or a profile, as the AWS CLI reads them)."""
    from openkms.status_table import status_table

    reply = _seal_api(endpoint, "/healthz", None, signed=True, method="GET")
    if output_format == "json":
        click.echo(json.dumps(reply, indent=2))
    else:
        click.echo(status_table(reply))


@operator.command("seal")
@_endpoint_option
def operator_seal(endpoint: str) -> None:
    """Seal the server (every worker): signed by the operator account's root user."""
    _seal_api(endpoint, "/sys/seal", {}, signed=True)
    click.echo("sealed")


@operator.command("rotate")
@_endpoint_option
def operator_rotate(endpoint: str) -> None:
    """Add a root-key generation (new values use it; old ones stay readable)."""
    reply = _seal_api(endpoint, "/sys/rotate", {}, signed=True)
    click.echo(f"root key generation {reply['generation']}")


@operator.command("rekey")
@_seal_storage_options
@click.option("--shares", default=5, show_default=True, type=int)
@click.option("--threshold", default=3, show_default=True, type=int)
@click.option("--share-dir", type=click.Path(path_type=Path, file_okay=False))
def operator_rekey(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    shares: int,
    threshold: int,
    share_dir: Path | None,
) -> None:
    """New Shamir shares for the same keyring: the current quorum's shares on standard
    input, one per line. Running nodes must be sealed and unsealed with the new shares
    before they can rotate again."""
    from openkms.seal.operator import SealError, rekey_shamir
    from openkms.seal.shamir import BadShare
    from openkms.storage import open_database

    config = ServerConfig(data_dir=data_dir, database_url=database_url)
    if share_dir is not None:
        taken = [p for p in _share_paths(share_dir, shares) if p.exists()]
        if taken:
            raise click.UsageError(f"{taken[0]} exists: give an empty --share-dir")
    given = [line.strip() for line in sys.stdin if line.strip()]
    db = open_database(config.effective_database_url)
    try:
        texts = rekey_shamir(db, given, shares, threshold)
    except (SealError, BadShare) as error:
        raise click.ClickException(str(error)) from None
    finally:
        db.dispose()
    click.echo("openkms: rekeyed; the old shares open nothing now.")
    _hand_out_shares(texts, threshold, share_dir)


@main.group()
def audit() -> None:
    """The audit trail: its public key, verification, look-up and export (offline: no root
    key is needed, and a server may run beside)."""


def _trail_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--data-dir",
                type=click.Path(path_type=Path, file_okay=False),
                default=_default_data_dir,
                help="The server's data directory (the SQLite trail is beside its database).",
            ),
            click.option(
                "--database-url",
                envvar="OPENKMS_DATABASE_URL",
                help="The server's database (the PostgreSQL trail is in its schema).",
            ),
        ]
    ):
        command = option(command)
    return command


@contextlib.contextmanager
def _trail_store(data_dir: Path, database_url: str | None) -> Iterator[Any]:
    from openkms.server.runtime import open_audit_store

    config = ServerConfig(data_dir=data_dir, database_url=database_url)
    try:
        store = open_audit_store(config)
    except Exception as error:  # noqa: BLE001 - any failure: the command's error message
        raise click.ClickException(
            f"cannot open the audit trail: {type(error).__name__}: {error}"
        ) from None
    try:
        yield store
    except Exception as error:
        if isinstance(error, click.ClickException):
            raise
        raise click.ClickException(
            f"cannot read the audit trail: {type(error).__name__}: {error}"
        ) from None
    finally:
        store.dispose()


@audit.command("public-key")
@_trail_options
@click.option(
    "--format",
    "key_format",
    type=click.Choice(["pem", "cloudtrail"]),
    default="pem",
    show_default=True,
    help="pem: the trail's Ed25519 key(s); cloudtrail: the log-file digests' RSA key(s) as "
    "CloudTrail's ListPublicKeys gives them (Fingerprint, Value: base64 DER PKCS#1), with "
    "their PEM.",
)
def audit_public_key(data_dir: Path, database_url: str | None, key_format: str) -> None:
    """Print the trail's signing public key(s). Keep a copy apart from the database:
    verification is only as good as the key it is given."""
    if key_format == "cloudtrail":
        from openkms.audit.log_files import public_key_list

        with _trail_store(data_dir, database_url) as store:
            listed = public_key_list(store)
        if not listed["PublicKeyList"]:
            raise click.ClickException("the trail has no log-file signing key yet")
        click.echo(json.dumps(listed, indent=2))
        return
    with _trail_store(data_dir, database_url) as store:
        keys = store.public_keys()
    if not keys:
        raise click.ClickException("the audit trail has no signing key yet")
    for _key_id, pem in keys:
        click.echo(pem, nl=False)


@audit.command("export-logs")
@_trail_options
@click.option("--root-key-file", envvar="OPENKMS_ROOT_KEY_FILE", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Directory to write AWSLogs/… into (as a trail's S3 bucket holds it).",
)
@click.option("--bucket", default="openkms-audit-logs", show_default=True)
@click.option("--trail-name", default="openkms", show_default=True)
@click.option("--end-time", help="ISO 8601; the export's end (default: now).")
def audit_export_logs(
    data_dir: Path,
    database_url: str | None,
    root_key_file: Path | None,
    out: Path,
    bucket: str,
    trail_name: str,
    end_time: str | None,
) -> None:
    """Write the trail as CloudTrail's gzip JSON log files with signed hourly digest files
    (CloudTrail's log file integrity validation). Signing needs the root key: this store's
    key file, or its token; a store sealed by Shamir shares cannot be exported offline."""
    from openkms.audit.log_files import ensure_log_file_key, export_logs
    from openkms.clock import clock_from_environment

    clock = clock_from_environment()
    end = _when(end_time) or clock.now()
    with (
        _admin_storage(data_dir, database_url, root_key_file) as (_, root_key),
        _trail_store(data_dir, database_url) as store,
    ):
        store.migrate()
        key = ensure_log_file_key(store, root_key, clock.now())
        report = export_logs(store, key, out, end, bucket, trail_name)
    click.echo(
        f"{report.events} events in {report.log_files} log files and "
        f"{report.digest_files} digest files of {len(report.accounts)} account-regions "
        f"written to {out}"
    )


@audit.command("verify")
@_trail_options
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The trail's public key (PEM), as exported; repeatable.",
)
@click.option(
    "--file",
    "trail_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Verify an exported trail instead of the database.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(
    data_dir: Path,
    database_url: str | None,
    public_keys: tuple[Path, ...],
    trail_file: Path | None,
    as_json: bool,
) -> None:
    """Prove that no event was changed, removed, inserted or reordered; exit 1 naming where
    a chain breaks if one does."""
    from openkms.audit.export import load_trail, trail_of
    from openkms.audit.signing import load_public_key, public_key_id
    from openkms.audit.verify import verify

    keys = {}
    for path in public_keys:
        try:
            key = load_public_key(path.read_bytes())
        except ValueError as error:
            raise click.ClickException(f"{path}: {error}") from None
        keys[public_key_id(key)] = key
    if trail_file is not None:
        try:
            report = verify(load_trail(trail_file), keys)
        except ValueError as error:
            raise click.ClickException(str(error)) from None
    else:
        with _trail_store(data_dir, database_url) as store:
            report = verify(trail_of(store), keys)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "events": report.events,
                    "writers": len(report.writers),
                    "problems": report.problems,
                    "notes": report.notes,
                },
                indent=2,
            )
        )
    else:
        for problem in report.problems:
            click.echo(f"BROKEN: {problem}")
        for note in report.notes:
            click.echo(f"note: {note}")
        verdict = "verified" if report.ok else "NOT verified"
        click.echo(f"{report.events} events of {len(report.writers)} writers: {verdict}")
    if not report.ok:
        sys.exit(1)


@audit.command("export")
@_trail_options
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write."
)
def audit_export(data_dir: Path, database_url: str | None, out: Path) -> None:
    """Write the whole trail (writers, events, digests) as JSON Lines, verifiable offline."""
    from openkms.audit.export import export_trail

    with _trail_store(data_dir, database_url) as store, out.open("wb") as target:
        count = export_trail(store, target)
    click.echo(f"{count} events written to {out}")


def _when(value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@audit.command("lookup")
@_trail_options
@click.option("--key", help="A key id or key ARN (or an alias name a request gave).")
@click.option("--event-name", help="e.g. Encrypt, CreateKey, AssumeRole.")
@click.option("--principal", help="The caller's ARN or access key id.")
@click.option("--error-code", help='An error code, or "*" for every refused request.')
@click.option("--start-time", help="ISO 8601, e.g. 2026-12-01T00:00:00Z.")
@click.option("--end-time", help="ISO 8601.")
@click.option("--limit", type=click.IntRange(min=1, max=100_000), default=50, show_default=True)
@click.option("--output", type=click.Choice(["json", "table"]), default="table", show_default=True)
def audit_lookup(
    data_dir: Path,
    database_url: str | None,
    key: str | None,
    event_name: str | None,
    principal: str | None,
    error_code: str | None,
    start_time: str | None,
    end_time: str | None,
    limit: int,
    output: str,
) -> None:
    """Events matching every filter given, newest first."""
    from openkms.audit.lookup import Filters, lookup, table

    filters = Filters(
        key=key,
        event_name=event_name,
        principal=principal,
        error_code=error_code,
        start=_when(start_time),
        end=_when(end_time),
        limit=limit,
    )
    with _trail_store(data_dir, database_url) as store:
        records = lookup(store, filters)
    if output == "json":
        click.echo(json.dumps({"Records": records}, indent=2))
    else:
        click.echo(table(records))
