"""Configuration and credential objects never show secrets, and no cache keeps a plaintext
secret longer than the moment it is needed."""

from __future__ import annotations

import datetime as dt
import gc
from pathlib import Path

from openkms.iam.accounts import IssuedCredentials
from openkms.server.config import ServerConfig
from openkms.server.runtime import build_runtime

SECRET = "hygiene-SECRET-9c1e"


def test_config_repr_leaves_the_secret_out(tmp_path: Path):
    config = ServerConfig(data_dir=tmp_path, access_key_id="AKIAHYGIENE", secret_access_key=SECRET)
    assert SECRET not in repr(config) and SECRET not in str(config)
    assert "AKIAHYGIENE" in repr(config)


def test_issued_credentials_repr_leaves_the_secret_out():
    issued = IssuedCredentials("111122223333", "arn:aws:iam::111122223333:root", "AK", SECRET, True)
    assert SECRET not in repr(issued)
    assert issued.without_secret().secret_access_key == ""


def test_the_first_secret_is_dropped_once_shown(tmp_path: Path):
    runtime = build_runtime(ServerConfig(data_dir=tmp_path))
    try:
        first = runtime.first_credentials
        assert first is not None and first.created and len(first.secret_access_key) == 40
        shown = first.secret_access_key
        del first
        runtime.forget_first_secret()
        assert runtime.first_credentials is not None
        assert runtime.first_credentials.secret_access_key == ""
        assert runtime.first_credentials.access_key_id
        gc.collect()
        holders = [o for o in gc.get_objects() if isinstance(o, IssuedCredentials)]
        assert all(o.secret_access_key != shown for o in holders)
    finally:
        runtime.services.db.dispose()


def test_the_credential_cache_keeps_signing_keys_not_secrets(tmp_path: Path):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from openkms.auth.sigv4 import SignedRequest

    config = ServerConfig(data_dir=tmp_path, access_key_id="AKIAHYGIENE", secret_access_key=SECRET)
    runtime = build_runtime(config)
    try:
        request = AWSRequest(
            method="POST",
            url="http://127.0.0.1:4599/",
            data=b"{}",
            headers={"X-Amz-Target": "TrentService.ListKeys"},
        )
        SigV4Auth(Credentials("AKIAHYGIENE", SECRET), "kms", "us-east-1").add_auth(request)
        prepared = request.prepare()
        signed = SignedRequest(
            method="POST",
            raw_path="/",
            raw_query="",
            headers=[(k.lower(), v) for k, v in prepared.headers.items()]
            + [("host", "127.0.0.1:4599")],
            body=b"{}",
        )
        authenticator = runtime.authenticator
        authenticator._clock = type("Fixed", (), {"now": lambda self: _signed_at(prepared)})()
        assert authenticator.authenticate(signed, "kms").principal.access_key_id == "AKIAHYGIENE"
        cached = [
            value
            for cache in vars(authenticator).values()
            if hasattr(cache, "_entries")
            for value, _ in cache._entries.values()
        ]
        assert cached, "the caches are where this test looks"
        flat = repr(cached).encode()
        assert SECRET.encode() not in flat and SECRET not in repr(cached)
    finally:
        runtime.services.db.dispose()


def _signed_at(prepared) -> dt.datetime:  # noqa: ANN001
    stamp = prepared.headers["X-Amz-Date"]
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
