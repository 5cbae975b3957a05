"""Shared helpers for the key-management end-to-end tests (keys, aliases, tags)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text

from openkms.storage.database import normalise_url
from tests.support import (
    ACCESS_KEY_ID,
    ACCOUNT_ID,
    CLIENT_CONFIG,
    REGION,
    SECRET_ACCESS_KEY,
    OpenKmsServer,
)

OTHER_REGION = "us-west-2"

# Limit and Marker violations, as every List operation answers them.
LIST_PAGING_VIOLATIONS = [
    (
        {"Limit": 0},
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    ),
    (
        {"Limit": 1001},
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy "
        "constraint: Member must have value less than or equal to 1000",
    ),
    (
        {"Marker": ""},
        "1 validation error detected: Value '' at 'marker' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
    ),
]


def near(when: dt.datetime, expected: dt.datetime, slack: float = 120.0) -> bool:
    """``when`` is within ``slack`` seconds of ``expected`` (server and test clocks differ by
    the request's time in flight)."""
    return abs((when - expected).total_seconds()) < slack


def key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


_CLIENTS: dict[tuple[str, str, str, bool], Any] = {}


def client(
    server: OpenKmsServer,
    account: dict[str, str] | None = None,
    region: str = REGION,
    validate: bool = True,
) -> Any:
    """A KMS client (made once per server, account, region: boto3 clients are slow to make).
    With ``validate=False`` boto3's own parameter checks are off, so it sends what it is given.
    """
    access_key = account["AccessKeyId"] if account else ACCESS_KEY_ID
    cache_key = (server.endpoint, access_key, region, validate)
    if cache_key not in _CLIENTS:
        config = CLIENT_CONFIG
        if not validate:
            config = config.merge(Config(parameter_validation=False))
        _CLIENTS[cache_key] = boto3.session.Session().client(
            "kms",
            endpoint_url=server.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=account["SecretAccessKey"] if account else SECRET_ACCESS_KEY,
            config=config,
        )
    return _CLIENTS[cache_key]


def unchecked_client(server: OpenKmsServer) -> Any:
    return client(server, validate=False)


def fails(call: Any, code: str, message: str | None = None, **params: Any) -> str:
    """Call, expect an AWS error ``code`` (and ``message``) with HTTP 400; return the message."""
    with pytest.raises(ClientError) as info:
        call(**params)
    response = info.value.response
    assert response["Error"]["Code"] == code, response["Error"]
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if message is not None:
        assert response["Error"]["Message"] == message
    return str(response["Error"].get("Message", ""))


def not_found(key_id: str, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    return f"Key '{key_arn(key_id, region, account)}' does not exist"


def denied(account: str, action: str, resource: str) -> str:
    return (
        f"User: arn:aws:iam::{account}:root is not authorized to perform: {action} on "
        f"resource: {resource} because no resource-based policy allows the {action} action"
    )


def refused_to_other_account(
    call: Any, other_id: str, key: dict[str, Any], action: str, member: str = "KeyId", **params: Any
) -> None:
    """Another account naming ``key`` in ``member``: by key id it is not found (in that
    account), by key ARN it is denied."""
    fails(
        call,
        "NotFoundException",
        not_found(key["KeyId"], account=other_id),
        **{member: key["KeyId"]},
        **params,
    )
    fails(
        call,
        "AccessDeniedException",
        denied(other_id, action, key["Arn"]),
        **{member: key["Arn"]},
        **params,
    )


def null_member(member: str) -> str:
    return (
        f"1 validation error detected: Value null at '{member}' failed to satisfy constraint: "
        "Member must not be null"
    )


def new_key(kms: Any, **params: Any) -> dict[str, Any]:
    return kms.create_key(**params)["KeyMetadata"]


def kept_keys(
    server: OpenKmsServer, default_usage: str, description: str
) -> Callable[..., dict[str, Any]]:
    """``keys(spec, usage, copy)``: a key of the server's account, made on first asking and
    kept (for a module-scoped fixture; ``copy`` names a second key of the same kind). Tests
    that use it never change the keys, so that slow ones (RSA_4096) are made once."""
    made: dict[tuple[str, str, int], dict[str, Any]] = {}
    kms = client(server)

    def key(spec: str, usage: str = default_usage, copy: int = 0) -> dict[str, Any]:
        if (spec, usage, copy) not in made:
            made[(spec, usage, copy)] = new_key(
                kms, KeySpec=spec, KeyUsage=usage, Description=f"{description} {spec}"
            )
        return made[(spec, usage, copy)]

    return key


def all_key_ids(kms: Any) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {}
    while True:
        page = kms.list_keys(**params)
        ids += [entry["KeyId"] for entry in page["Keys"]]
        if not page["Truncated"]:
            return ids
        params["Marker"] = page["NextMarker"]


def stored_value(server: OpenKmsServer, query: str, **params: Any) -> Any:
    """One value read straight from the server's database (SQLite file or PostgreSQL)."""
    url = server.database_url or f"sqlite:///{server.data_dir / 'openkms.db'}"
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(query), params).scalar_one()
    finally:
        engine.dispose()


def stored_policy(server: OpenKmsServer, key_id: str) -> str:
    """The policy kept for a key, read from the server's database (no GetKeyPolicy yet)."""
    return str(stored_value(server, "SELECT policy FROM kms_keys WHERE key_id = :k", k=key_id))
