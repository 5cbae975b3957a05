"""Structural checks of a key policy document. Evaluation comes with the authz package."""

from __future__ import annotations

from typing import Any

import orjson

from openkms.errors import MalformedPolicyDocumentException


def check_policy_document(text: str) -> None:
    try:
        # orjson bounds nesting depth, so a deeply nested document is an error, not a crash.
        document = orjson.loads(text)
    except (ValueError, RecursionError):
        raise MalformedPolicyDocumentException("The policy document is not valid JSON.") from None
    if not isinstance(document, dict):
        raise MalformedPolicyDocumentException("The policy document must be a JSON object.")
    statements: Any = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise MalformedPolicyDocumentException(
            "The policy document must contain at least one statement."
        )
    for statement in statements:
        if not isinstance(statement, dict):
            raise MalformedPolicyDocumentException("Each policy statement must be an object.")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise MalformedPolicyDocumentException(
                "Each policy statement must have an Effect of Allow or Deny."
            )
        if "Action" not in statement and "NotAction" not in statement:
            raise MalformedPolicyDocumentException(
                "Each policy statement must name an Action or NotAction."
            )
        if "Principal" not in statement and "NotPrincipal" not in statement:
            raise MalformedPolicyDocumentException("Policy contains a statement with no principal.")
