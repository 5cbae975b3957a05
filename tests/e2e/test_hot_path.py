"""With warm caches, Encrypt, Decrypt and GenerateDataKey run no SQL at all.

The server runs in this process (uvicorn on a real socket) so the test can count every
statement its database engine executes.
"""

from __future__ import annotations

import threading
import time

import boto3
import pytest
import requests
import uvicorn
from sqlalchemy import event

from openkms.server.app import create_app
from openkms.server.config import ServerConfig
from openkms.server.runtime import build_runtime
from tests.support import ACCESS_KEY_ID, CLIENT_CONFIG, REGION, SECRET_ACCESS_KEY, free_port


@pytest.fixture
def in_process_server(tmp_path, backend, database_url_factory):
    config = ServerConfig(
        data_dir=tmp_path / "data",
        database_url=database_url_factory(backend),
        cache_seconds=300,
        # The lifecycle jobs read on their own thread, once per interval: not requests' reads.
        job_interval_seconds=3600,
        account_id="123456789012",
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )
    runtime = build_runtime(config)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(f"{endpoint}/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the in-process server did not become healthy"
        time.sleep(0.05)
    statements: list[str] = []
    event.listen(
        runtime.services.db.engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )
    yield endpoint, statements
    server.should_exit = True
    thread.join(timeout=10)
    runtime.services.db.dispose()


def test_warm_crypto_requests_read_no_database(in_process_server):
    endpoint, statements = in_process_server
    kms = boto3.session.Session().client(
        "kms",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=CLIENT_CONFIG,
    )
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/hot", TargetKeyId=key_id)
    # Warm the caches: credentials, key, alias.
    blob = kms.encrypt(KeyId="alias/hot", Plaintext=b"warm")["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob)
    statements.clear()

    for _ in range(20):
        blob = kms.encrypt(KeyId="alias/hot", Plaintext=b"hot path")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hot path"
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
        kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=key_id)
    assert statements == []

    kms.disable_key(KeyId=key_id)  # a write: it must reach the database
    assert statements
