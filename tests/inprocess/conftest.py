"""The in-process tier: a real runtime (real SQLite in a tmp dir, the real dispatcher, the
real key store) driven through ``Dispatcher.invoke``, with no HTTP and no SigV4.

Requests are written as boto3 would send them on the wire: the JSON form, blobs as base64
strings. ``Kms.call`` does that encoding, so a test passes ``Plaintext=b"..."`` as it would to
boto3, and gets the handler's result dict back (blobs in it are bytes).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openkms.audit import AuditFacts
from openkms.clock import ManualClock
from openkms.errors import KmsError
from openkms.iam.accounts import ensure_account_with_key
from openkms.iam.principal import Principal
from openkms.seal.dev_root_key import open_dev_root_key
from openkms.server.config import ServerConfig
from openkms.server.runtime import Runtime, build_runtime

ACCOUNT_ID = "111122223333"
ACCESS_KEY_ID = "INPROCESSKEY"
SECRET_ACCESS_KEY = "INPROCESSSECRET"
OTHER_ACCOUNT_ID = "444455556666"
OTHER_ACCESS_KEY_ID = "OTHERKEY"
OTHER_SECRET_ACCESS_KEY = "OTHERSECRET"
REGION = "us-east-1"
START = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def wire(value: Any) -> Any:
    """``value`` as JSON carries it: bytes become base64 text, at any depth."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {k: wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


@dataclass
class Kms:
    """One caller of the in-process server: a principal in a region."""

    runtime: Runtime
    principal: Principal
    region: str = REGION

    @property
    def account_id(self) -> str:
        return self.principal.account_id

    def call(self, operation: str, facts: AuditFacts | None = None, **params: Any) -> dict:
        return self.runtime.dispatcher.invoke(
            self.principal, self.region, operation, wire(params), facts
        )

    def error(self, operation: str, **params: Any) -> KmsError:
        """The KmsError ``operation`` answers (the test fails if it succeeds)."""
        with pytest.raises(KmsError) as caught:
            self.call(operation, **params)
        return caught.value

    @contextmanager
    def refused(self, code: str, message: str | None = None) -> Iterator[None]:
        """``with kms.refused("DisabledException", f"{arn} is disabled."): kms.call(...)``;
        ``message`` None checks the code only."""
        with pytest.raises(KmsError) as caught:
            yield
        assert_error(caught.value, code, message)

    def create_key(self, **params: Any) -> dict:
        return self.call("CreateKey", **params)["KeyMetadata"]

    def key_state(self, key_id: str) -> str:
        return self.call("DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"]


def assert_error(error: KmsError, code: str, message: str | None = None) -> None:
    """``error`` has AWS code ``code`` and, unless ``message`` is None, exactly ``message``."""
    got = (error.code, error.message if message is not None else None)
    assert got == (code, message), (
        f"expected {code}: {message!r}, got {error.code}: {error.message!r}"
    )


def set_state(runtime: Runtime, key_id: str, state: str) -> None:
    """Put a key straight into ``state`` (the cache forgets it when the transaction commits)."""
    with runtime.services.db.transaction() as tx:
        tx.set_key_state(key_id, state)


def server_config(data_dir: Path) -> ServerConfig:
    return ServerConfig(
        data_dir=data_dir,
        account_id=ACCOUNT_ID,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@contextmanager
def running(config: ServerConfig, clock: ManualClock) -> Iterator[Runtime]:
    """A real runtime on ``config``, torn down afterwards."""
    built = build_runtime(config, clock=clock)
    try:
        yield built
    finally:
        built.close()


def iam_user(kms: Kms, policy: str | None = None) -> Kms:
    """A new IAM user of the first account (made as ``openkms admin create-user`` makes one),
    with ``policy`` as its one inline identity policy, as a caller of ``kms``'s runtime."""
    import uuid

    from openkms.iam.users import create_user, put_user_policy

    services = kms.runtime.services
    root_key = open_dev_root_key(kms.runtime.config.effective_root_key_file)
    user, issued = create_user(
        services.db, root_key, services.clock, ACCOUNT_ID, f"u-{uuid.uuid4().hex[:10]}"
    )
    if policy is not None:
        put_user_policy(services.db, ACCOUNT_ID, user.user_name, "p", policy)
    return Kms(kms.runtime, Principal(ACCOUNT_ID, user.arn, user.user_id, issued.access_key_id))


def root_user(runtime: Runtime) -> Kms:
    """The first account's root user."""
    return Kms(
        runtime,
        Principal(ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:root", ACCOUNT_ID, ACCESS_KEY_ID),
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def config(tmp_path: Path) -> ServerConfig:
    return server_config(tmp_path / "data")


@pytest.fixture
def runtime(config: ServerConfig, clock: ManualClock) -> Iterator[Runtime]:
    """A runtime of this test's own."""
    with running(config, clock) as built:
        yield built


@pytest.fixture
def kms(runtime: Runtime) -> Kms:
    """The first account's root user, on this test's own runtime."""
    return root_user(runtime)


@pytest.fixture(scope="module")
def module_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kms]:
    """The first account's root user on one runtime per module, for many small tests that
    each make their own keys (and so cannot see each other's)."""
    config = server_config(tmp_path_factory.mktemp("inprocess") / "data")
    with running(config, ManualClock(START)) as built:
        yield root_user(built)


def other_account_root(runtime: Runtime) -> Kms:
    """The root user of a second account on the same server (made if new)."""
    # build_runtime keeps the root key inside the key store and the authenticator; open the
    # same file again, as a second process of the cluster would.
    root_key = open_dev_root_key(runtime.config.effective_root_key_file)
    issued = ensure_account_with_key(
        runtime.services.db,
        root_key,
        runtime.services.clock,
        OTHER_ACCOUNT_ID,
        OTHER_ACCESS_KEY_ID,
        OTHER_SECRET_ACCESS_KEY,
    )
    return Kms(
        runtime,
        Principal(issued.account_id, issued.principal_arn, OTHER_ACCOUNT_ID, OTHER_ACCESS_KEY_ID),
    )


@pytest.fixture
def other_kms(runtime: Runtime) -> Kms:
    """The root user of a second account, on this test's own runtime."""
    return other_account_root(runtime)


@pytest.fixture(scope="module")
def module_other_kms(module_kms: Kms) -> Kms:
    """The root user of a second account, on the module's runtime."""
    return other_account_root(module_kms.runtime)
