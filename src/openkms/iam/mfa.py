"""Virtual MFA devices: TOTP (RFC 6238, 30-second steps, 6 digits, SHA-1: what every
authenticator app and AWS's virtual devices use), computed with pyotp.

The seed is shown once, when the device is made, and stored only wrapped by the root key
(label ``mfa-seed:<serial>``). A code is accepted for the current time step or one step either
side (clock drift of the phone), compared in constant time, and never twice: the device keeps
the newest step accepted, advanced by one conditional UPDATE, so a replayed code fails on
every node.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re

import pyotp

from openkms.clock import Clock
from openkms.iam.accounts import check_account_id
from openkms.iam.users import IdentityError
from openkms.seal import RootKey
from openkms.seal.secrets import unwrap_secret, wrap_secret
from openkms.storage import Database, DuplicateEntry
from openkms.storage.records import MfaDeviceRecord

STEP_SECONDS = 30
# Steps either side of now a code may be for.
_DRIFT_STEPS = 1
_DEVICE_NAME = re.compile(r"[\w+=,.@-]{1,226}", re.ASCII)
_SERIAL = re.compile(r"arn:aws:iam::(\d{12}):mfa/([\w+=,.@-]{1,226})", re.ASCII)
_CODE = re.compile(r"\d{6}", re.ASCII)


class MfaCodeRefused(Exception):
    """The code (or the device) does not authenticate the caller; ``invalid_code`` says which,
    as AWS's two messages do."""

    def __init__(self, invalid_code: bool) -> None:
        super().__init__("invalid code" if invalid_code else "unknown device")
        self.invalid_code = invalid_code


def mfa_serial(account_id: str, device_name: str) -> str:
    return f"arn:aws:iam::{account_id}:mfa/{device_name}"


def seed_label(serial_number: str) -> str:
    return f"mfa-seed:{serial_number}"


def create_virtual_mfa_device(
    db: Database,
    root_key: RootKey,
    clock: Clock,
    account_id: str,
    user_name: str,
    device_name: str,
) -> tuple[str, str]:
    """A new, not yet enabled, device for a user: (serial number, Base32 seed)."""
    check_account_id(account_id)
    if not _DEVICE_NAME.fullmatch(device_name):
        raise IdentityError("a device name is 1 to 226 letters, digits or _+=,.@-")
    serial = mfa_serial(account_id, device_name)
    seed = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
    record = MfaDeviceRecord(
        serial_number=serial,
        account_id=account_id,
        user_name=user_name,
        wrapped_seed=wrap_secret(root_key, seed_label(serial), seed.encode()),
        enabled_at=None,
        last_step=0,
        created_at=clock.now(),
    )
    exists = IdentityError(f"MFA device {serial} already exists", code="EntityAlreadyExists")
    try:
        with db.transaction() as tx:
            if tx.get_user(account_id, user_name) is None:
                raise IdentityError(
                    f"user {user_name} does not exist in account {account_id}", code="NoSuchEntity"
                )
            if tx.get_mfa_device(serial) is not None:
                raise exists
            tx.insert_mfa_device(record)
    except DuplicateEntry:
        raise exists from None
    return serial, seed


def enable_mfa_device(
    db: Database, root_key: RootKey, clock: Clock, serial_number: str, code1: str, code2: str
) -> None:
    """IAM's EnableMFADevice: two consecutive codes prove the seed is in the authenticator."""
    if _SERIAL.fullmatch(serial_number) is None:
        raise IdentityError("a serial number is arn:aws:iam::<account>:mfa/<device name>")
    if not (_CODE.fullmatch(code1) and _CODE.fullmatch(code2)):
        raise IdentityError("authentication codes are 6 digits")
    with db.transaction(readonly=True) as tx:
        device = tx.get_mfa_device(serial_number)
    if device is None:
        raise IdentityError(f"MFA device {serial_number} does not exist", code="NoSuchEntity")
    if device.enabled_at is not None:
        raise IdentityError(
            f"MFA device {serial_number} is already enabled", code="EntityAlreadyExists"
        )
    totp = _totp(root_key, device)
    now_step = _step(clock.now())
    accepted = None
    # The two codes may have been read off the phone a little while ago.
    for step in range(now_step - _DRIFT_STEPS - 2, now_step + _DRIFT_STEPS):
        first = hmac.compare_digest(totp.generate_otp(step), code1)
        second = hmac.compare_digest(totp.generate_otp(step + 1), code2)
        if first and second:
            accepted = step + 1
    if accepted is None:
        raise IdentityError(
            "the authentication codes are not two consecutive codes of the device",
            code="InvalidAuthenticationCode",
        )
    with db.transaction() as tx:
        if not tx.accept_mfa_step(serial_number, accepted, enabled_at=clock.now()):
            raise IdentityError(
                "the authentication codes were used already", code="InvalidAuthenticationCode"
            )


def delete_virtual_mfa_device(db: Database, serial_number: str) -> None:
    with db.transaction() as tx:
        if tx.get_mfa_device(serial_number) is None:
            raise IdentityError(f"MFA device {serial_number} does not exist", code="NoSuchEntity")
        tx.delete_mfa_device(serial_number)


def authenticate_code(
    db: Database,
    root_key: RootKey,
    clock: Clock,
    serial_number: str,
    account_id: str,
    user_name: str | None,
    code: str,
) -> dt.datetime:
    """When the caller (``user_name`` of ``account_id``) proved the code of its enabled
    device; raise ``MfaCodeRefused`` otherwise."""
    with db.transaction(readonly=True) as tx:
        device = tx.get_mfa_device(serial_number)
    if (
        device is None
        or device.enabled_at is None
        or device.account_id != account_id
        or device.user_name != user_name
    ):
        raise MfaCodeRefused(invalid_code=False)
    totp = _totp(root_key, device)
    now = clock.now()
    now_step = _step(now)
    matched = None
    for step in range(now_step - _DRIFT_STEPS, now_step + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and step > device.last_step:
            matched = step
    if matched is None:
        raise MfaCodeRefused(invalid_code=True)
    with db.transaction() as tx:
        # Another request with this code (or a later one) may have won meanwhile.
        if not tx.accept_mfa_step(serial_number, matched):
            raise MfaCodeRefused(invalid_code=True)
    return now


def _totp(root_key: RootKey, device: MfaDeviceRecord) -> pyotp.TOTP:
    seed = unwrap_secret(root_key, seed_label(device.serial_number), device.wrapped_seed)
    return pyotp.TOTP(seed.decode(), interval=STEP_SECONDS)


def _step(when: dt.datetime) -> int:
    return int(when.timestamp()) // STEP_SECONDS
