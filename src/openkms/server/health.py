"""``GET /healthz``: the plain answer for anyone (a load balancer's probe), the node's status
(``openkms.server.status``) for the operator.

A request without an Authorization header gets ``{"status": "ok"}``, as before. A signed one
must be the operator's (the root user of the first account, as the seal API checks): anyone
else is refused with AccessDeniedException and learns nothing beyond the plain answer's."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from openkms.auth.sigv4 import SignedRequest
from openkms.errors import KmsError
from openkms.server.operator_auth import require_operator
from openkms.server.status import node_status

if TYPE_CHECKING:
    from openkms.server.runtime import Runtime

log = logging.getLogger(__name__)
REFUSAL = "only the root user of the operator account may read the node's status"


class HealthDetails:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def handle(self, signed: SignedRequest) -> tuple[int, dict[str, Any]]:
        """Run on a worker thread: the check and the report read the database."""
        runtime = self._runtime
        try:
            if runtime.seal is not None:
                runtime.seal.refresh()
            require_operator(runtime.authenticator, runtime.services.db, signed, REFUSAL)
            return 200, {"status": "ok", **node_status(runtime)}
        except KmsError as error:
            return error.status, {"__type": error.code, "message": error.message or ""}
        except Exception as error:  # noqa: BLE001 - its type only: a message could quote a value
            log.error("healthz details failed: %s", type(error).__name__)
            return 500, {"__type": "InternalFailure", "message": "see the server log"}
