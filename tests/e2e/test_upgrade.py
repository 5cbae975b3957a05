"""A data directory or database written by release 0.1.0 upgrades on start-up, and all of it
keeps working: keys, aliases, tags, both accounts' access keys and every ciphertext.

The fixture in ``tests/data/release-0.1.0`` was written by the 0.1.0 server itself (commit
2c34f65; see its README.md). On SQLite the current server starts on a copy of that data
directory; on PostgreSQL the old database's rows are loaded, table by table, into a fresh
schema made by revision 0001 (the 0.1.0 schema). Either way the same checks run against the
manifest, then again after a restart (the migration must find nothing more to do).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from botocore.exceptions import ClientError
from sqlalchemy import MetaData, create_engine, insert, select, text
from sqlalchemy.engine import make_url

import openkms.storage
from openkms.domain.managed_keys import PREDEFINED_ALIASES
from tests.support import (
    REGION,
    OpenKmsServer,
    drop_postgres_schema,
    postgres_schema_url,
    postgres_url_or_skip,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "release-0.1.0"
MANIFEST: dict[str, Any] = json.loads((FIXTURE / "manifest.json").read_text(encoding="utf-8"))
MIGRATIONS = Path(openkms.storage.__file__).resolve().parent / "migrations"
OLD_REVISION = "0001"
ALIAS_DATES = ("CreationDate", "LastUpdatedDate")


# -- the two backends ----------------------------------------------------------------------


def test_a_release_0_1_0_data_directory_upgrades_and_keeps_working(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "openkms.db"
    shutil.copyfile(FIXTURE / "openkms.db", database)
    root_key = _copy_root_key(data_dir)
    assert _revision(f"sqlite:///{database}") == OLD_REVISION
    server = OpenKmsServer(data_dir, root_key_file=root_key)
    try:
        _upgrade_and_check(server, f"sqlite:///{database}")
    finally:
        server.stop()


def test_a_release_0_1_0_postgresql_database_upgrades_and_keeps_working(tmp_path: Path) -> None:
    url = postgres_schema_url(postgres_url_or_skip())
    server = None
    try:
        _load_fixture_into_postgres(url, tmp_path)
        assert _revision(url) == OLD_REVISION
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        server = OpenKmsServer(data_dir, url, root_key_file=_copy_root_key(data_dir))
        _upgrade_and_check(server, url)
    finally:
        if server is not None:
            server.stop()
        drop_postgres_schema(url)


def _copy_root_key(data_dir: Path) -> Path:
    root_key = data_dir / "root.key"
    shutil.copyfile(FIXTURE / "root.key", root_key)
    root_key.chmod(0o600)
    return root_key


def _engine(url: str) -> Any:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def _revision(url: str) -> str:
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            return str(version.scalar_one())
    finally:
        engine.dispose()


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _load_fixture_into_postgres(url: str, tmp_path: Path) -> None:
    """Make the 0.1.0 schema (revision 0001) in the empty schema ``url`` names, then copy
    every row of the fixture's SQLite database into it, exactly as stored."""
    target = _engine(url)
    copy = tmp_path / "release-0.1.0.db"  # read a copy: opening the fixture could touch it
    shutil.copyfile(FIXTURE / "openkms.db", copy)
    source = create_engine(f"sqlite:///{copy}")
    try:
        with target.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, OLD_REVISION)
        old_tables, new_tables = MetaData(), MetaData()
        old_tables.reflect(source)
        new_tables.reflect(target)
        assert set(old_tables.tables) == set(new_tables.tables)
        with source.connect() as reading, target.begin() as writing:
            for table in new_tables.sorted_tables:  # parents before children
                if table.name == "alembic_version":
                    continue
                old = old_tables.tables[table.name]
                assert set(old.c.keys()) == set(table.c.keys()), table.name
                rows = [
                    {name: _as_utc(value) for name, value in row._mapping.items()}
                    for row in reading.execute(select(old))
                ]
                assert rows, f"the fixture has no {table.name}"
                if rows:
                    writing.execute(insert(table), rows)
    finally:
        source.dispose()
        target.dispose()


def _as_utc(value: Any) -> Any:
    # SQLite keeps the UTC datetimes 0.1.0 wrote without a zone; PostgreSQL must get them
    # as UTC, not as the session's local time.
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# -- the checks, shared by both backends ---------------------------------------------------


@dataclass
class Made:
    """What the test made after the upgrade, so later checks expect it too."""

    keys: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    ciphertexts: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, str]] = field(default_factory=list)


def _upgrade_and_check(server: OpenKmsServer, url: str) -> None:
    server.start()
    assert _revision(url) == _head_revision()
    made = Made()
    _check_release_state(server, made)
    _use_after_upgrade(server, made)
    _check_release_state(server, made)

    server.restart()  # the migration has already run: this start must change nothing
    assert _revision(url) == _head_revision()
    _check_release_state(server, made)
    _use_after_upgrade(server, made)
    _check_release_state(server, made)


def _accounts() -> dict[str, dict[str, str]]:
    return MANIFEST["accounts"]


_CLIENTS: dict[tuple[str, ...], Any] = {}


def _client(server: OpenKmsServer, service: str, region: str, key_id: str, secret: str) -> Any:
    """boto3 clients are slow to make: one per server, service, region and credentials."""
    cache_key = (server.endpoint, service, region, key_id, secret)
    if cache_key not in _CLIENTS:
        _CLIENTS[cache_key] = server.client(service, region, key_id, secret)
    return _CLIENTS[cache_key]


def _kms(server: OpenKmsServer, account: str | dict[str, str], region: str = REGION) -> Any:
    creds = _accounts()[account] if isinstance(account, str) else account
    return _client(server, "kms", region, creds["AccessKeyId"], creds["SecretAccessKey"])


def _key(label: str) -> dict[str, Any]:
    return MANIFEST["keys"][label]


def _error_code(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**params)
    return str(info.value.response["Error"]["Code"])


def _decrypt_params(item: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {"CiphertextBlob": base64.b64decode(item["CiphertextBlob"])}
    if item["EncryptionContext"] is not None:
        params["EncryptionContext"] = item["EncryptionContext"]
    return params


def _check_release_state(server: OpenKmsServer, made: Made) -> None:
    _check_credentials(server, made)
    _check_listings(server, made)
    for label in MANIFEST["keys"]:
        _check_key(server, label, made)
    for item in MANIFEST["ciphertexts"] + made.ciphertexts:
        _check_ciphertext(server, item)
    _check_disabled_keys(server)
    _check_accounts_stay_apart(server)


def _check_credentials(server: OpenKmsServer, made: Made) -> None:
    for creds in [*_accounts().values(), *made.accounts]:
        sts = _client(server, "sts", REGION, creds["AccessKeyId"], creds["SecretAccessKey"])
        identity = sts.get_caller_identity()
        assert identity["Account"] == creds["AccountId"]
        assert identity["Arn"] == creds["Arn"]
        wrong = _client(server, "kms", REGION, creds["AccessKeyId"], creds["SecretAccessKey"] + "x")
        assert _error_code(wrong.list_keys) == "InvalidSignatureException"


def _check_listings(server: OpenKmsServer, made: Made) -> None:
    for listing in MANIFEST["listings"]:
        where = (listing["account"], listing["region"])
        kms = _kms(server, listing["account"], listing["region"])
        listed_keys = kms.list_keys(Limit=1000)
        assert not listed_keys["Truncated"]
        key_ids = {k["KeyId"] for k in listed_keys["Keys"]}
        assert key_ids == set(listing["KeyIds"]) | made.keys.get(where, set())

        listed = kms.list_aliases(Limit=100)
        assert not listed["Truncated"]
        aliases = {a["AliasName"]: a for a in listed["Aliases"] if "TargetKeyId" in a}
        # AWS's predefined aliases that name no key yet are listed beside them.
        predefined = {a["AliasName"] for a in listed["Aliases"] if "TargetKeyId" not in a}
        assert predefined == set(PREDEFINED_ALIASES) - set(aliases)
        expected_names = {a["AliasName"] for a in listing["Aliases"]}
        assert set(aliases) == expected_names | made.aliases.get(where, set())
        for alias in listing["Aliases"]:
            _assert_same_alias(aliases[alias["AliasName"]], alias)


def _assert_same_alias(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if name in ALIAS_DATES:
            assert actual[name] == dt.datetime.fromisoformat(value), (expected["AliasName"], name)
        else:
            assert actual[name] == value, (expected["AliasName"], name)


def _check_key(server: OpenKmsServer, label: str, made: Made) -> None:
    key = _key(label)
    expected = key["KeyMetadata"]
    kms = _kms(server, key["account"], key["region"])
    for reference in (expected["KeyId"], expected["Arn"]):
        metadata = kms.describe_key(KeyId=reference)["KeyMetadata"]
        # Every field 0.1.0 answered is answered the same; a later release may add fields.
        for name, value in expected.items():
            if name == "CreationDate":
                assert metadata[name] == dt.datetime.fromisoformat(value), (label, name)
            else:
                assert metadata[name] == value, (label, name)

    tags = kms.list_resource_tags(KeyId=expected["KeyId"])
    assert tags["Tags"] == key["Tags"], label
    assert not tags["Truncated"]

    listing = next(
        entry
        for entry in MANIFEST["listings"]
        if (entry["account"], entry["region"]) == (key["account"], key["region"])
    )
    targeting = {
        a["AliasName"]: a for a in listing["Aliases"] if a["TargetKeyId"] == expected["KeyId"]
    }
    listed = kms.list_aliases(KeyId=expected["KeyId"])["Aliases"]
    assert {a["AliasName"] for a in listed} == set(targeting), label
    for alias in listed:
        _assert_same_alias(alias, targeting[alias["AliasName"]])
    for name in targeting:  # an alias names the same key as before
        assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == expected["KeyId"]


def _ciphertext(label: str) -> dict[str, Any]:
    return next(c for c in MANIFEST["ciphertexts"] if c["label"] == label)


def _ciphertext_key_arn(item: dict[str, Any]) -> str:
    return item.get("KeyArn") or _key(item["key"])["KeyMetadata"]["Arn"]


def _is_disabled(item: dict[str, Any]) -> bool:
    return item.get("key") in MANIFEST["disabled_keys"]


def _check_ciphertext(server: OpenKmsServer, item: dict[str, Any]) -> None:
    kms = _kms(server, item.get("credentials") or item["account"], item["region"])
    key_arn = _ciphertext_key_arn(item)
    params = _decrypt_params(item)
    if _is_disabled(item):
        assert _error_code(kms.decrypt, **params) == "DisabledException", item["label"]
        return
    for extra in ({}, {"KeyId": key_arn}):
        answer = kms.decrypt(**params, **extra)
        assert answer["KeyId"] == key_arn, item["label"]
        assert answer["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        if item["Plaintext"] is None:
            assert len(answer["Plaintext"]) == item["PlaintextLength"], item["label"]
        else:
            assert answer["Plaintext"] == base64.b64decode(item["Plaintext"]), item["label"]
    # The encryption context is still bound: another one does not decrypt.
    wrong = dict(params, EncryptionContext={**(item["EncryptionContext"] or {}), "x-": "y"})
    assert _error_code(kms.decrypt, **wrong) == "InvalidCiphertextException", item["label"]


def _check_disabled_keys(server: OpenKmsServer) -> None:
    for label in MANIFEST["disabled_keys"]:
        key = _key(label)
        kms = _kms(server, key["account"], key["region"])
        key_id = key["KeyMetadata"]["KeyId"]
        assert _error_code(kms.encrypt, KeyId=key_id, Plaintext=b"x") == "DisabledException"
        code = _error_code(kms.generate_data_key, KeyId=key_id, KeySpec="AES_256")
        assert code == "DisabledException"


def _check_accounts_stay_apart(server: OpenKmsServer) -> None:
    first_key = _key("payments")["KeyMetadata"]["KeyId"]
    second_key = _key("second-account")["KeyMetadata"]["KeyId"]
    first, second = _kms(server, "first"), _kms(server, "second")
    assert _error_code(second.describe_key, KeyId=first_key) == "NotFoundException"
    assert _error_code(first.describe_key, KeyId=second_key) == "NotFoundException"


def _record(
    made: Made,
    label: str,
    account: str,
    region: str,
    key_arn: str,
    blob: bytes,
    plaintext: bytes,
    context: dict[str, str] | None,
    credentials: dict[str, str] | None = None,
) -> None:
    made.ciphertexts.append(
        {
            "label": f"after the upgrade: {label}",
            "account": account,
            "credentials": credentials,
            "region": region,
            "KeyArn": key_arn,
            "CiphertextBlob": base64.b64encode(blob).decode(),
            "EncryptionContext": context,
            "Plaintext": base64.b64encode(plaintext).decode(),
        }
    )


def _use_after_upgrade(server: OpenKmsServer, made: Made) -> None:
    """New keys, aliases, accounts and ciphertexts work beside the old ones; old keys take
    management changes (undone again, so the manifest still holds)."""
    run = len(made.accounts)
    kms = _kms(server, "first")
    payments = _key("payments")["KeyMetadata"]

    new = kms.create_key(
        Description=f"made after the upgrade {run}", Tags=[{"TagKey": "new", "TagValue": "yes"}]
    )["KeyMetadata"]
    made.keys.setdefault(("first", REGION), set()).add(new["KeyId"])
    alias = f"alias/after-upgrade-{run}"
    kms.create_alias(AliasName=alias, TargetKeyId=new["KeyId"])
    made.aliases.setdefault(("first", REGION), set()).add(alias)
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == new["KeyId"]
    assert kms.list_resource_tags(KeyId=new["KeyId"])["Tags"] == [
        {"TagKey": "new", "TagValue": "yes"}
    ]

    blob = kms.encrypt(KeyId=alias, Plaintext=b"new key", EncryptionContext={"n": "1"})
    _record(
        made, "new key", "first", REGION, new["Arn"], blob["CiphertextBlob"], b"new key", {"n": "1"}
    )
    blob = kms.encrypt(KeyId="alias/payments", Plaintext=b"old key, new blob")
    _record(
        made,
        "old key",
        "first",
        REGION,
        payments["Arn"],
        blob["CiphertextBlob"],
        b"old key, new blob",
        None,
    )
    data_key = kms.generate_data_key(
        KeyId=payments["KeyId"], KeySpec="AES_256", EncryptionContext={"d": "k"}
    )
    _record(
        made,
        "data key under an old key",
        "first",
        REGION,
        payments["Arn"],
        data_key["CiphertextBlob"],
        data_key["Plaintext"],
        {"d": "k"},
    )

    # Old ciphertexts move to the new key, and new ones to an old key.
    old = _ciphertext("context, by alias")
    moved = kms.re_encrypt(
        CiphertextBlob=base64.b64decode(old["CiphertextBlob"]),
        SourceEncryptionContext=old["EncryptionContext"],
        DestinationKeyId=new["KeyId"],
    )
    assert moved["SourceKeyId"] == _ciphertext_key_arn(old)
    _record(
        made,
        "old blob re-encrypted to a new key",
        "first",
        REGION,
        new["Arn"],
        moved["CiphertextBlob"],
        base64.b64decode(old["Plaintext"]),
        None,
    )
    moved = kms.re_encrypt(
        CiphertextBlob=blob["CiphertextBlob"],
        DestinationKeyId=_key("odd-text")["KeyMetadata"]["KeyId"],
        DestinationEncryptionContext={"r": "e"},
    )
    _record(
        made,
        "new blob re-encrypted to an old key",
        "first",
        REGION,
        _key("odd-text")["KeyMetadata"]["Arn"],
        moved["CiphertextBlob"],
        b"old key, new blob",
        {"r": "e"},
    )

    # Management of old keys: enable, describe, tag, disable again.
    disabled = _key("disabled")["KeyMetadata"]
    kms.enable_key(KeyId=disabled["KeyId"])
    before = _ciphertext("before it was disabled")
    answer = kms.decrypt(**_decrypt_params(before))
    assert answer["Plaintext"] == base64.b64decode(before["Plaintext"])
    assert kms.encrypt(KeyId=disabled["KeyId"], Plaintext=b"briefly")["KeyId"] == disabled["Arn"]
    kms.disable_key(KeyId=disabled["KeyId"])

    plain = _key("plain")["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=plain, Tags=[{"TagKey": "temporary", "TagValue": "x"}])
    assert kms.list_resource_tags(KeyId=plain)["Tags"] == [{"TagKey": "temporary", "TagValue": "x"}]
    kms.untag_resource(KeyId=plain, TagKeys=["temporary"])
    kms.update_key_description(KeyId=plain, Description="for a moment")
    assert kms.describe_key(KeyId=plain)["KeyMetadata"]["Description"] == "for a moment"
    kms.update_key_description(KeyId=plain, Description=_key("plain")["KeyMetadata"]["Description"])

    # The second account (made by 0.1.0's admin command) uses its old key.
    second = _kms(server, "second")
    blob = second.encrypt(KeyId="alias/payments", Plaintext=b"second, after")
    _record(
        made,
        "second account",
        "second",
        REGION,
        _key("second-account")["KeyMetadata"]["Arn"],
        blob["CiphertextBlob"],
        b"second, after",
        None,
    )

    # An account made now, beside the upgraded server.
    account = server.create_account()
    made.accounts.append(account)
    third = _kms(server, account)
    third_key = third.create_key()["KeyMetadata"]
    blob = third.encrypt(KeyId=third_key["KeyId"], Plaintext=b"third account")
    _record(
        made,
        "account made after the upgrade",
        account["AccountId"],
        REGION,
        third_key["Arn"],
        blob["CiphertextBlob"],
        b"third account",
        None,
        credentials=account,
    )
