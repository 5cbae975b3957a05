"""Imported key material (BYOK) as rules a handler or a background job calls.

Like ``openkms.domain.lifecycle``, each rule runs in one transaction with the key's row locked
and re-reads the key and its materials under the lock, so two imports (or an import and the
expiry job) never both act on what only one of them saw, and a material past its ValidTo is
deleted exactly once however many processes run the job.

Which materials count: a key's *permanently associated* materials are its current one and the
ones before it (version <= current_version); imported material above the current version is
PENDING_ROTATION until RotateKeyOnDemand makes it current, and can be deleted or replaced
without touching the key's state.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass
from typing import Any

from openkms.crypto.key_import import WrappingAlgorithm, WrappingKeySpec
from openkms.crypto.key_specs import KeySpec
from openkms.domain.key_states import KeyState, check_transition
from openkms.domain.keys import locked_key
from openkms.errors import (
    IncorrectKeyMaterialException,
    KMSInvalidStateException,
    NotFoundException,
    UnsupportedOperationException,
    ValidationException,
)
from openkms.keystore import KeyHandle, KeyStore, StagedImport
from openkms.storage import Database, KeyRecord, MaterialRecord
from openkms.storage.repository import Transaction

EXTERNAL = "EXTERNAL"
IMPORTED = "IMPORTED"
PENDING_IMPORT = "PENDING_IMPORT"
EXPIRES = "KEY_MATERIAL_EXPIRES"
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
NEW_KEY_MATERIAL = "NEW_KEY_MATERIAL"
EXISTING_KEY_MATERIAL = "EXISTING_KEY_MATERIAL"

IMPORT_PARAMETERS_LIFETIME = dt.timedelta(hours=24)
MAX_VALID_TO = dt.timedelta(days=365)

# Material changes move the key only out of these states (a key pending deletion stays so;
# Unavailable, Creating and Updating keys are never EXTERNAL-origin keys openkms can have).
_USABLE_STATES = (KeyState.ENABLED, KeyState.DISABLED)


def check_external(record: KeyRecord) -> None:
    """Only keys made for imported material take it (AWS's words)."""
    if record.origin != EXTERNAL:
        raise UnsupportedOperationException(
            f"{record.arn} origin is {record.origin} which is not valid for this operation."
        )


# -- input rules (before any key is looked up) ---------------------------------------------


def check_import_parameters_input(req: dict[str, Any]) -> None:
    algorithm, spec = req.get("WrappingAlgorithm"), req.get("WrappingKeySpec")
    if algorithm == "RSAES_PKCS1_V1_5":
        raise ValidationException(
            "The RSAES_PKCS1_V1_5 wrapping algorithm is not supported: AWS KMS retired it on "
            "October 10, 2023. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
        )
    if algorithm == "SM2PKE" or spec == "SM2":
        raise UnsupportedOperationException(
            "The SM2 wrapping key spec and the SM2PKE wrapping algorithm are available only "
            "in AWS China Regions; this openkms server does not support them."
        )
    # The model's enums admit nothing else; these guard a model that grows new values.
    if algorithm not in set(WrappingAlgorithm) or spec not in set(WrappingKeySpec):
        raise UnsupportedOperationException(
            f"Wrapping algorithm {algorithm} with wrapping key spec {spec} is not supported "
            "by this openkms server."
        )


def check_import_material_input(req: dict[str, Any]) -> None:
    model = req.get("ExpirationModel", EXPIRES)
    if model == EXPIRES and "ValidTo" not in req:
        raise ValidationException(
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
        )
    if model == DOES_NOT_EXPIRE and "ValidTo" in req:
        raise ValidationException(
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
        )
    if req.get("ImportType") == NEW_KEY_MATERIAL and "KeyMaterialId" in req:
        raise ValidationException(
            "A KeyMaterialId cannot be specified when the ImportType is NEW_KEY_MATERIAL"
        )


def check_valid_to(valid_to: dt.datetime | None, now: dt.datetime) -> None:
    if valid_to is None:
        return
    if valid_to <= now:
        raise ValidationException("The validTo date must be a future date and time.")
    if valid_to > now + MAX_VALID_TO:
        raise ValidationException(
            "The validTo date must be no more than 365 days from the date of the request."
        )


# -- ImportKeyMaterial -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportRequest:
    import_type: str | None
    expiration_model: str
    valid_to: dt.datetime | None
    description: str | None
    material_id: str | None

    @classmethod
    def from_params(cls, req: dict[str, Any]) -> ImportRequest:
        return cls(
            import_type=req.get("ImportType"),
            expiration_model=req.get("ExpirationModel", EXPIRES),
            valid_to=req.get("ValidTo"),
            description=req.get("KeyMaterialDescription"),
            material_id=req.get("KeyMaterialId"),
        )


def import_material(
    db: Database,
    keystore: KeyStore,
    key_id: str,
    staged: StagedImport,
    request: ImportRequest,
    now: dt.datetime,
) -> KeyRecord:
    """Put ``staged`` into the key as the request says; returns the key as it was before.

    Every check comes before the first write, so a refused import changes nothing."""
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "ImportKeyMaterial")
        check_external(record)
        check_single_material_request(record, request)
        materials = tx.list_materials(key_id)
        # AWS: NEW until material was ever imported, EXISTING afterwards; a KeyMaterialId
        # names existing material, so it implies EXISTING too.
        import_type = request.import_type
        if import_type is None:
            existing = materials or request.material_id is not None
            import_type = EXISTING_KEY_MATERIAL if existing else NEW_KEY_MATERIAL
        same = _same_material(materials, staged.material_id)
        fields: dict[str, Any] = {
            "import_state": IMPORTED,
            "expiration_model": request.expiration_model,
            "valid_to": request.valid_to if request.expiration_model == EXPIRES else None,
        }
        if import_type == EXISTING_KEY_MATERIAL:
            named = request.material_id
            if same is None or (
                named is not None and not hmac.compare_digest(named, staged.material_id)
            ):
                raise IncorrectKeyMaterialException(
                    "The key material is not the key material that was previously imported "
                    f"into the KMS key {record.arn}"
                    + (f" as key material {named}." if named else ".")
                )
            if request.description is not None:
                fields["description"] = request.description
            wrapped = keystore.import_material(record.key_spec, record.arn, same.version, staged)
            tx.update_material(key_id, same.version, wrapped_material=wrapped, **fields)
        else:
            if same is not None:
                raise IncorrectKeyMaterialException(
                    f"The key material is already associated with the KMS key {record.arn} "
                    f"(id: {same.material_id}). Import it with ImportType "
                    "EXISTING_KEY_MATERIAL."
                )
            pending = [m for m in materials if m.version > record.current_version]
            if record.current_version and pending:
                raise KMSInvalidStateException(
                    f"New key material (id: {staged.material_id}) cannot be imported into KMS "
                    f"key {record.arn}, because another key material (id: "
                    f"{pending[0].material_id}) is pending rotation."
                )
            version = max((m.version for m in materials), default=0) + 1
            tx.insert_material(
                MaterialRecord(
                    key_id=key_id,
                    version=version,
                    material_id=staged.material_id,
                    wrapped_material=keystore.import_material(
                        record.key_spec, record.arn, version, staged
                    ),
                    created_at=now,
                    description=request.description,
                    **fields,
                )
            )
            if record.current_version == 0:
                # The key's first material: current at once (no rotation to wait for).
                tx.make_material_current(key_id, version, record.on_demand_rotations)
        _enable_when_complete(tx, record)
    return record


def check_single_material_request(record: KeyRecord, request: ImportRequest) -> None:
    """Asymmetric and HMAC keys have one material for life (AWS: "you cannot change the key
    material after the initial import"), so the members that choose among materials are for
    symmetric keys only. Importing other material than the first is refused as a mismatch."""
    if record.key_spec == KeySpec.SYMMETRIC_DEFAULT:
        return
    if (
        request.import_type is not None
        or request.material_id is not None
        or (request.description is not None)
    ):
        raise ValidationException(
            "ImportType, KeyMaterialId and KeyMaterialDescription are valid only for "
            f"symmetric encryption KMS keys; {record.arn} has key spec {record.key_spec}."
        )


def _same_material(materials: list[MaterialRecord], material_id: str) -> MaterialRecord | None:
    found = None
    for material in materials:
        # Every row compared, in constant time: which material matched stays unobservable.
        if hmac.compare_digest(material.material_id, material_id):
            found = material
    return found


def _enable_when_complete(tx: Transaction, before: KeyRecord) -> None:
    """PendingImport -> Enabled once every permanently associated material is held again
    (AWS: "you will need to import all of the key materials associated with the KMS key")."""
    if before.key_state != KeyState.PENDING_IMPORT:
        return
    record = tx.get_key(before.key_id)
    assert record is not None  # locked by this transaction
    if material_held(tx, record):
        check_transition(record.key_state, KeyState.ENABLED)
        tx.set_key_state(record.key_id, KeyState.ENABLED)


def material_held(tx: Transaction, record: KeyRecord) -> bool:
    """Whether every material the key is built on (the current one and older) is held."""
    associated = [
        m for m in tx.list_materials(record.key_id) if m.version <= record.current_version
    ]
    return bool(associated) and all(m.wrapped_material is not None for m in associated)


# -- DeleteImportedKeyMaterial and expiry ----------------------------------------------------


def delete_material(
    db: Database, keystore: KeyStore, key_id: str, material_id: str | None
) -> tuple[KeyRecord, str | None]:
    """Delete imported material (the current one unless ``material_id`` names another);
    returns the key as it was and the id of the material, None if the key never had one."""
    with db.transaction() as tx:
        record = locked_key(tx, key_id, "DeleteImportedKeyMaterial")
        check_external(record)
        materials = {m.version: m for m in tx.list_materials(key_id)}
        if material_id is None:
            target = materials.get(record.current_version)
        else:
            target = next(
                (m for m in materials.values() if hmac.compare_digest(m.material_id, material_id)),
                None,
            )
            if target is None:
                raise NotFoundException(
                    f"Key material {material_id} is not associated with the KMS key {record.arn}."
                )
        if target is None:
            return record, None
        deleted = target.wrapped_material is not None
        if deleted:
            _forget(tx, record, target)
    if deleted:
        assert target.wrapped_material is not None
        keystore.discard(
            KeyHandle(record.arn, target.version, target.wrapped_material, record.key_spec)
        )
    return record, target.material_id


def expire_material(
    db: Database, keystore: KeyStore, key_id: str, version: int, now: dt.datetime
) -> bool:
    """The expiry job's step for one material: delete it if it is (still) held and past its
    ValidTo; True if this call did."""
    with db.transaction() as tx:
        record = tx.lock_key(key_id)
        if record is None:
            return False
        material = next((m for m in tx.list_materials(key_id) if m.version == version), None)
        if (
            material is None
            or material.wrapped_material is None
            or material.valid_to is None
            or material.valid_to > now
        ):
            return False
        _forget(tx, record, material)
    keystore.discard(KeyHandle(record.arn, version, material.wrapped_material, record.key_spec))
    return True


def _forget(tx: Transaction, record: KeyRecord, material: MaterialRecord) -> None:
    if material.version > record.current_version:
        # Pending rotation, so never current: no ciphertext was made with it. It goes
        # altogether, and the key may take new material for its next rotation (AWS).
        tx.delete_material(record.key_id, material.version)
        return
    # The row keeps its id (and description), so the same material can be imported again
    # and every ciphertext of it decrypts; its expiry belonged to the import that ended.
    tx.update_material(
        record.key_id,
        material.version,
        wrapped_material=None,
        import_state=PENDING_IMPORT,
        expiration_model=None,
        valid_to=None,
    )
    if record.key_state in _USABLE_STATES:
        check_transition(record.key_state, KeyState.PENDING_IMPORT)
        tx.set_key_state(record.key_id, KeyState.PENDING_IMPORT)


# -- RotateKeyOnDemand ------------------------------------------------------------------------


def rotate_to_pending(
    tx: Transaction, record: KeyRecord, now: dt.datetime, rotation_type: str, rotations: int
) -> MaterialRecord:
    """Make the key's imported PENDING_ROTATION material current (``rotate_on_demand`` has
    checked the key spec and the on-demand quota)."""
    if record.key_state == KeyState.PENDING_IMPORT:
        raise KMSInvalidStateException(f"{record.arn} is pending import.")
    pending = [
        m
        for m in tx.list_materials(record.key_id)
        if m.version > record.current_version and m.wrapped_material is not None
    ]
    if not pending:
        raise KMSInvalidStateException(
            f"No available key material pending rotation for the key: {record.arn}."
        )
    material = pending[0]
    tx.update_material(
        record.key_id, material.version, rotation_type=rotation_type, rotation_date=now
    )
    tx.make_material_current(record.key_id, material.version, rotations)
    return material
