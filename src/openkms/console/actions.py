"""The console's forms, each read into the KMS operation (and its JSON input) it asks for.

Only the form's fields are translated here: what a value may be, whether the caller may do
it and what happens are the dispatcher's and the operation's, exactly as for the API (a bad
value is the model's ``ValidationException``, shown as such).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from openkms.console.web import Request


@dataclass(frozen=True, slots=True)
class Action:
    operation: str
    body: dict[str, Any]


def _number(text: str) -> int | str:
    # A number as JSON would carry it; anything else goes as text, for the model to refuse.
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() and len(stripped) < 10 else stripped


def alias_name(text: str) -> str:
    name = text.strip()
    return name if name.startswith("alias/") else f"alias/{name}"


def _schedule_deletion(key_id: str, request: Request) -> Action:
    body: dict[str, Any] = {"KeyId": key_id}
    if request.field("PendingWindowInDays").strip():
        body["PendingWindowInDays"] = _number(request.field("PendingWindowInDays"))
    return Action("ScheduleKeyDeletion", body)


def _tag(key_id: str, request: Request) -> Action:
    tag = {"TagKey": request.field("TagKey"), "TagValue": request.field("TagValue")}
    return Action("TagResource", {"KeyId": key_id, "Tags": [tag]})


def _untag(key_id: str, request: Request) -> Action:
    body = {"KeyId": key_id, "TagKeys": [request.field("TagKey")]}
    return Action("UntagResource", body)


def _create_alias(key_id: str, request: Request) -> Action:
    body = {"AliasName": alias_name(request.field("AliasName")), "TargetKeyId": key_id}
    return Action("CreateAlias", body)


def _delete_alias(key_id: str, request: Request) -> Action:
    return Action("DeleteAlias", {"AliasName": request.field("AliasName")})


def _put_policy(key_id: str, request: Request) -> Action:
    body = {"KeyId": key_id, "PolicyName": "default", "Policy": request.field("Policy")}
    return Action("PutKeyPolicy", body)


def _simple(operation: str) -> Callable[[str, Request], Action]:
    def action(key_id: str, request: Request) -> Action:
        return Action(operation, {"KeyId": key_id})

    return action


# The path segment after /console/keys/<key id>/ -> the form's operation.
KEY_ACTIONS: dict[str, Callable[[str, Request], Action]] = {
    "enable": _simple("EnableKey"),
    "disable": _simple("DisableKey"),
    "schedule-deletion": _schedule_deletion,
    "cancel-deletion": _simple("CancelKeyDeletion"),
    "rotate": _simple("RotateKeyOnDemand"),
    "enable-rotation": _simple("EnableKeyRotation"),
    "disable-rotation": _simple("DisableKeyRotation"),
    "tag": _tag,
    "untag": _untag,
    "create-alias": _create_alias,
    "delete-alias": _delete_alias,
    "policy": _put_policy,
}


# What the key's page says once an action is done (?done=<action>): fixed text, never
# anything taken from the request.
NOTICES = {
    "created": "Key created.",
    "enable": "Key enabled.",
    "disable": "Key disabled.",
    "schedule-deletion": "Key deletion scheduled.",
    "cancel-deletion": "Key deletion cancelled; the key is disabled until you enable it.",
    "rotate": "On-demand rotation done.",
    "enable-rotation": "Automatic rotation enabled.",
    "disable-rotation": "Automatic rotation disabled.",
    "tag": "Tag saved.",
    "untag": "Tag removed.",
    "create-alias": "Alias created.",
    "delete-alias": "Alias deleted.",
    "policy": "Key policy saved.",
}


def create_key(request: Request) -> dict[str, Any]:
    """CreateKey's input from the create form (an alias, if given, is a second request)."""
    body: dict[str, Any] = {
        "KeySpec": request.field("KeySpec") or "SYMMETRIC_DEFAULT",
        "KeyUsage": request.field("KeyUsage") or "ENCRYPT_DECRYPT",
    }
    if request.field("Description"):
        body["Description"] = request.field("Description")
    return body


KEY_SPECS = (
    "SYMMETRIC_DEFAULT",
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
)
KEY_USAGES = (
    "ENCRYPT_DECRYPT",
    "SIGN_VERIFY",
    "GENERATE_VERIFY_MAC",
    "KEY_AGREEMENT",
)
