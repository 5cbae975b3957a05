"""Custom key stores of type AWS_CLOUDHSM on PKCS#11 tokens: CreateCustomKeyStore,
DescribeCustomKeyStores, UpdateCustomKeyStore, DeleteCustomKeyStore, ConnectCustomKeyStore,
DisconnectCustomKeyStore.

The token user's PIN (KeyStorePassword) is wrapped by the root key under a label naming the
store, and is never returned, logged or audited. Connecting logs in to the token there and
then, so the state a Describe shows is the token's answer, not a hope; the state lives in the
database, so every worker and node agrees on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from openkms.errors import (
    CloudHsmClusterInUseException,
    CloudHsmClusterNotFoundException,
    CustomKeyStoreHasCMKsException,
    CustomKeyStoreInvalidStateException,
    CustomKeyStoreNameInUseException,
    CustomKeyStoreNotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.keystore.clusters import TokenLocation
from openkms.keystore.token_keys import StoreLogin, StoreNotConnected, TokenKeys
from openkms.keystore.token_login import LoginFailed, check_login
from openkms.keystore.token_sessions import TokenUnreachable
from openkms.ops.context import Services
from openkms.ops.declaration import Call, handles
from openkms.ops.pagination import decode_marker, encode_marker
from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret
from openkms.storage import Database
from openkms.storage.changes import (
    Change,
    ChangeListener,
    CustomKeyStoreChanged,
    EverythingChanged,
)
from openkms.storage.records import CustomKeyStoreRecord
from openkms.storage.repository import Transaction

_MARKER = "custom-key-stores"
_CLOUDHSM = "AWS_CLOUDHSM"
_XKS_MEMBERS = (
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyAuthenticationCredential",
    "XksProxyConnectivity",
)
_ID_ALPHABET = "0123456789abcdef"


def _password_label(store_id: str) -> str:
    return f"custom-key-store-password:{store_id}"


def _new_store_id() -> str:
    return "cks-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def _is_store_id(value: str) -> bool:
    return value.startswith("cks-") and len(value) == 21


def _no_xks(req: dict[str, Any]) -> None:
    given = [m for m in _XKS_MEMBERS if m in req]
    if given:
        raise ValidationException(
            f"{given[0]} is valid only for custom key stores of type EXTERNAL_KEY_STORE."
        )


def _check_cluster(services: Services, tx: Transaction, cluster_id: str, store_id: str) -> None:
    if cluster_id not in services.clusters:
        raise CloudHsmClusterNotFoundException(
            f"AWS CloudHSM cluster {cluster_id} cannot be found."
        )
    for other in tx.all_custom_key_stores():
        if other.cluster_id == cluster_id and other.custom_key_store_id != store_id:
            raise CloudHsmClusterInUseException(
                f"AWS CloudHSM cluster {cluster_id} is already associated with "
                f"custom key store {other.custom_key_store_id}."
            )


def _name_taken(tx: Transaction, record_account: str, region: str, name: str) -> bool:
    return any(s.name == name for s in tx.list_custom_key_stores(record_account, region))


def _store(tx: Transaction, call: Call, lock: bool = False) -> CustomKeyStoreRecord:
    store_id = call.params["CustomKeyStoreId"]
    # No store's id holds NUL (they are cks- and hex), and PostgreSQL cannot compare one.
    found = (
        None
        if "\x00" in store_id
        else tx.get_custom_key_store(call.ctx.account_id, call.ctx.region, store_id, lock)
    )
    if found is None:
        raise CustomKeyStoreNotFoundException(f"Custom key store '{store_id}' does not exist.")
    return found


def _wrapped_password(services: Services, store_id: str, password: str) -> bytes:
    assert services.root_key is not None  # the runtime always gives one
    return wrap_secret(services.root_key, _password_label(store_id), password.encode())


def _not_connected(store: CustomKeyStoreRecord) -> CustomKeyStoreInvalidStateException:
    return CustomKeyStoreInvalidStateException(
        f"Custom key store {store.custom_key_store_id} is not connected; its ConnectionState "
        f"is {store.connection_state}. Connect it (ConnectCustomKeyStore) and try again."
    )


def _named_store(services: Services, call: Call) -> CustomKeyStoreRecord:
    with services.db.transaction(readonly=True) as tx:
        return _store(tx, call)


def connected_store(services: Services, call: Call) -> CustomKeyStoreRecord:
    """The caller's store that CreateKey or GenerateRandom names, which must be CONNECTED."""
    store = _named_store(services, call)
    if store.connection_state != "CONNECTED":
        raise _not_connected(store)
    return store


def store_for_new_key(
    services: Services, call: Call, key_spec: str, key_usage: str, origin: str
) -> CustomKeyStoreRecord:
    """CreateKey in a custom key store: a store of the caller's, Origin AWS_CLOUDHSM (each
    needs the other), a symmetric encryption key, the store connected."""
    if "CustomKeyStoreId" not in call.params:
        raise ValidationException("A CustomKeyStoreId is required when Origin is AWS_CLOUDHSM.")
    store = _named_store(services, call)
    if origin != _CLOUDHSM:
        raise ValidationException(
            "Origin must be AWS_CLOUDHSM for a KMS key in a custom key store of type "
            f"AWS_CLOUDHSM; {origin} was given."
        )
    if key_spec != "SYMMETRIC_DEFAULT" or key_usage != "ENCRYPT_DECRYPT":
        raise UnsupportedOperationException(
            f"KeySpec {key_spec} with KeyUsage {key_usage} is not supported in a custom key "
            "store: its keys are symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)."
        )
    if call.params.get("MultiRegion"):
        raise UnsupportedOperationException(
            "Multi-Region keys cannot be created in a custom key store."
        )
    if store.connection_state != "CONNECTED":
        raise _not_connected(store)
    return store


def store_login(
    db: Database, root_key: RootKey, clusters: Mapping[str, TokenLocation]
) -> StoreLogin:
    """How a process logs in to a store's token when it first uses one of its keys: the
    store must be CONNECTED, and its PIN is unwrapped then, never kept in the database plain."""

    def login(store_id: str) -> tuple[TokenLocation, str]:
        with db.transaction(readonly=True) as tx:
            store = tx.custom_key_store_by_id(store_id)
        if store is None or store.connection_state != "CONNECTED":
            raise StoreNotConnected(store_id)
        location = clusters.get(store.cluster_id)
        if location is None:
            raise TokenUnreachable("CLUSTER_NOT_FOUND")
        pin = unwrap_secret(root_key, _password_label(store_id), store.wrapped_password).decode()
        return location, pin

    return login


def close_changed_stores(tokens: TokenKeys) -> ChangeListener:
    """A store connected, disconnected, changed or deleted anywhere: this process's sessions
    on its token close (a disconnect logs out, as AWS's does)."""

    def changed(changes: Iterable[Change]) -> None:
        for change in changes:
            if isinstance(change, CustomKeyStoreChanged):
                tokens.close(change.custom_key_store_id)
            elif isinstance(change, EverythingChanged):
                tokens.forget_secrets()

    return changed


@handles("CreateCustomKeyStore")
def create_custom_key_store(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
    store_type = req.get("CustomKeyStoreType", _CLOUDHSM)
    if store_type != _CLOUDHSM:
        raise UnsupportedOperationException(
            "External key stores (EXTERNAL_KEY_STORE) are not supported by this openkms "
            "server; use AWS_CLOUDHSM, a PKCS#11 token configured on the server."
        )
    _no_xks(req)
    for member in ("CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"):
        if member not in req:
            raise ValidationException(
                f"{member} is required for custom key stores of type AWS_CLOUDHSM."
            )
    store_id = _new_store_id()
    with services.db.transaction() as tx:
        if _name_taken(tx, ctx.account_id, ctx.region, req["CustomKeyStoreName"]):
            raise CustomKeyStoreNameInUseException(
                f"Custom key store name '{req['CustomKeyStoreName']}' is already in use."
            )
        _check_cluster(services, tx, req["CloudHsmClusterId"], store_id)
        tx.insert_custom_key_store(
            CustomKeyStoreRecord(
                custom_key_store_id=store_id,
                account_id=ctx.account_id,
                region=ctx.region,
                name=req["CustomKeyStoreName"],
                store_type=_CLOUDHSM,
                cluster_id=req["CloudHsmClusterId"],
                trust_anchor_certificate=req["TrustAnchorCertificate"],
                wrapped_password=_wrapped_password(services, store_id, req["KeyStorePassword"]),
                connection_state="DISCONNECTED",
                connection_error_code=None,
                creation_date=services.clock.now(),
            )
        )
    return {"CustomKeyStoreId": store_id}


def _entry(record: CustomKeyStoreRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "CustomKeyStoreId": record.custom_key_store_id,
        "CustomKeyStoreName": record.name,
        "CloudHsmClusterId": record.cluster_id,
        "TrustAnchorCertificate": record.trust_anchor_certificate,
        "ConnectionState": record.connection_state,
        "CreationDate": record.creation_date,
        "CustomKeyStoreType": record.store_type,
    }
    if record.connection_error_code is not None:
        entry["ConnectionErrorCode"] = record.connection_error_code
    return entry


@handles("DescribeCustomKeyStores")
def describe_custom_key_stores(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
    if "CustomKeyStoreId" in req and "CustomKeyStoreName" in req:
        raise ValidationException(
            "You cannot specify both CustomKeyStoreId and CustomKeyStoreName."
        )
    limit = req.get("Limit", 100)
    after = decode_marker(req.get("Marker"), _MARKER, _is_store_id)
    with services.db.transaction(readonly=True) as tx:
        stores = tx.list_custom_key_stores(ctx.account_id, ctx.region, after)
    if "CustomKeyStoreId" in req:
        stores = [s for s in stores if s.custom_key_store_id == req["CustomKeyStoreId"]]
        if not stores and after is None:
            raise CustomKeyStoreNotFoundException(
                f"Custom key store '{req['CustomKeyStoreId']}' does not exist."
            )
    if "CustomKeyStoreName" in req:
        stores = [s for s in stores if s.name == req["CustomKeyStoreName"]]
        if not stores and after is None:
            raise CustomKeyStoreNotFoundException(
                f"Custom key store '{req['CustomKeyStoreName']}' does not exist."
            )
    page = stores[:limit]
    response: dict[str, Any] = {
        "CustomKeyStores": [_entry(s) for s in page],
        "Truncated": len(stores) > limit,
    }
    if len(stores) > limit:
        response["NextMarker"] = encode_marker(page[-1].custom_key_store_id, _MARKER)
    return response


def _require_disconnected(store: CustomKeyStoreRecord, to_be: str) -> None:
    """AWS: a CloudHSM key store must be DISCONNECTED to be updated or deleted."""
    if store.connection_state != "DISCONNECTED":
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store.custom_key_store_id} must be disconnected to be "
            f"{to_be}; its ConnectionState is {store.connection_state}."
        )


@handles("UpdateCustomKeyStore")
def update_custom_key_store(services: Services, call: Call) -> dict[str, Any]:
    req, ctx = call.params, call.ctx
    _no_xks(req)
    with services.db.transaction() as tx:
        store = _store(tx, call, lock=True)
        _require_disconnected(store, "updated")
        values: dict[str, Any] = {}
        new_name = req.get("NewCustomKeyStoreName")
        if new_name is not None and new_name != store.name:
            if _name_taken(tx, ctx.account_id, ctx.region, new_name):
                raise CustomKeyStoreNameInUseException(
                    f"Custom key store name '{new_name}' is already in use."
                )
            values["name"] = new_name
        if "CloudHsmClusterId" in req:
            _check_cluster(services, tx, req["CloudHsmClusterId"], store.custom_key_store_id)
            values["cluster_id"] = req["CloudHsmClusterId"]
        if "KeyStorePassword" in req:
            values["wrapped_password"] = _wrapped_password(
                services, store.custom_key_store_id, req["KeyStorePassword"]
            )
        if values:
            tx.update_custom_key_store(store.custom_key_store_id, **values)
    return {}


@handles("DeleteCustomKeyStore")
def delete_custom_key_store(services: Services, call: Call) -> dict[str, Any]:
    with services.db.transaction() as tx:
        store = _store(tx, call, lock=True)
        _require_disconnected(store, "deleted")
        if tx.key_ids_in_custom_key_store(store.custom_key_store_id):
            # Keys pending deletion count too: their material is still in the token.
            raise CustomKeyStoreHasCMKsException(
                f"Custom key store {store.custom_key_store_id} still has KMS keys. Schedule "
                "their deletion and wait until they are deleted before deleting the store."
            )
        tx.delete_custom_key_store(store.custom_key_store_id)
    return {}


@handles("ConnectCustomKeyStore")
def connect_custom_key_store(services: Services, call: Call) -> dict[str, Any]:
    with services.db.transaction(readonly=True) as tx:
        store = _store(tx, call)
    if store.connection_state == "CONNECTED":
        return {}
    if store.connection_state == "FAILED":
        raise CustomKeyStoreInvalidStateException(
            f"Custom key store {store.custom_key_store_id} is FAILED: disconnect it "
            "(DisconnectCustomKeyStore), correct the error, then connect it again."
        )
    state, code = "CONNECTED", None
    location = services.clusters.get(store.cluster_id)
    if location is None:
        state, code = "FAILED", "CLUSTER_NOT_FOUND"
    else:
        assert services.root_key is not None
        pin = unwrap_secret(
            services.root_key,
            _password_label(store.custom_key_store_id),
            store.wrapped_password,
        ).decode()
        try:
            check_login(location, pin)
        except LoginFailed as failure:
            state, code = "FAILED", failure.code
    with services.db.transaction() as tx:
        current = _store(tx, call, lock=True)
        if current.connection_state == "DISCONNECTED":
            tx.update_custom_key_store(
                store.custom_key_store_id, connection_state=state, connection_error_code=code
            )
    return {}


@handles("DisconnectCustomKeyStore")
def disconnect_custom_key_store(services: Services, call: Call) -> dict[str, Any]:
    with services.db.transaction() as tx:
        store = _store(tx, call, lock=True)
        if store.connection_state == "DISCONNECTED":
            raise CustomKeyStoreInvalidStateException(
                f"Custom key store {store.custom_key_store_id} is already DISCONNECTED."
            )
        tx.update_custom_key_store(
            store.custom_key_store_id, connection_state="DISCONNECTED", connection_error_code=None
        )
    return {}
