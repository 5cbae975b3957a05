"""The operator's seal API: ``/sys/seal-status``, ``/sys/unseal``, ``/sys/seal``, ``/sys/rotate``.

How each is authenticated (docs/behaviour.md):

- status and unseal answer anyone: a sealed node cannot check a SigV4 signature (access-key
  secrets are wrapped by the root key it does not have), so the share is the credential. A
  share that is not one of this seal's is refused at once and counts nothing.
- seal and rotate need a SigV4 signature (service ``kms``) by the root user of the store's
  first account, the operator's account: a stolen share must not be enough to take the
  service down, and rotation is the operator's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import KmsError
from openkms.seal.operator import SealError
from openkms.seal.pkcs11_seal import TokenError
from openkms.seal.shamir import BadShare
from openkms.server.operator_auth import require_operator
from openkms.server.seal_control import SealControl
from openkms.storage import Database

log = logging.getLogger(__name__)
Reply = tuple[int, dict[str, Any]]


class SysApi:
    def __init__(self, control: SealControl, authenticator: Authenticator, db: Database) -> None:
        self._control = control
        self._authenticator = authenticator
        self._db = db

    def handle(self, path: str, method: str, signed: SignedRequest) -> Reply:
        """Run on a worker thread: every route reads the database."""
        try:
            self._control.refresh()
            if path == "/sys/seal-status" and method == "GET":
                return 200, self._control.status()
            if method != "POST":
                return _error(405, "MethodNotAllowed", "use POST")
            if path == "/sys/unseal":
                body = _json(signed.body)
                if body.get("reset"):
                    return 200, self._control.reset()
                share = body.get("share")
                return 200, self._control.submit(share if isinstance(share, str) else None)
            if path == "/sys/seal":
                self._operator(signed)
                self._control.seal()
                return 200, {"sealed": True}
            if path == "/sys/rotate":
                self._operator(signed)
                return 200, {"generation": self._control.rotate()}
            return _error(404, "NotFound", "no such operation")
        except (SealError, TokenError, BadShare) as error:
            # BadShare, AlreadyUnsealed, … : their messages never quote the share.
            return _error(400, type(error).__name__, str(error))
        except KmsError as error:
            return _error(error.status, error.code, error.message or "")
        except Exception as error:  # noqa: BLE001 - its type only: a message could quote a value
            log.error("seal API %s failed: %s", path, type(error).__name__)
            return _error(500, "InternalFailure", "the seal API failed; see the server log")

    def _operator(self, signed: SignedRequest) -> None:
        require_operator(
            self._authenticator,
            self._db,
            signed,
            "only the root user of the operator account may seal or rotate the root key",
        )


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise SealError("the body must be JSON") from None
    if not isinstance(value, dict):
        raise SealError("the body must be a JSON object")
    return value


def _error(status: int, code: str, message: str) -> Reply:
    return status, {"__type": code, "message": message}
