"""Console actions as KMS requests: the dispatcher's own path, as the signed-in principal.

Every page read and every form the console submits becomes one KMS operation with its JSON
input, run by ``Dispatcher.invoke`` (validation, resolution, authorisation, quotas, key
state, the handler) and recorded by the same ``AuditSink`` as an API request, durable before
the page is answered. Nothing here implements an operation; an ``AccessDeniedException`` is
the dispatcher's, and the console only shows it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from openkms.audit import AuditFacts, AuditUnavailable
from openkms.audit.trail_api import TrailApi, TrailCall
from openkms.crypto.random_pool import random_uuid
from openkms.errors import KmsError, KMSInternalException
from openkms.iam.principal import Principal
from openkms.ops.dispatcher import Dispatcher
from openkms.server.endpoints import AUDIT_UNAVAILABLE_MESSAGE

log = logging.getLogger("openkms.console")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking, from where: what a signed API request's facts would say."""

    principal: Principal
    region: str
    source_address: str | None
    secure_transport: bool
    user_agent: str | None


class ConsoleCalls:
    def __init__(
        self,
        dispatcher: Dispatcher,
        audit: Any,  # openkms.audit.AuditSink
        executor: Executor,
        follow_seal: Callable[[], Awaitable[None]],
        trail_api: TrailApi | None,
    ) -> None:
        self._dispatcher = dispatcher
        self._audit = audit
        self._executor = executor
        self._follow_seal = follow_seal
        self._trail_api = trail_api

    async def kms(self, caller: Caller, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One KMS operation, authorised and audited as the API's; raises its ``KmsError``."""
        await self._follow_seal()
        facts = AuditFacts(
            request_id=random_uuid(),
            service="kms",
            event_time=self._dispatcher.services.clock.now(),
            source_address=caller.source_address,
            secure_transport=caller.secure_transport,
            user_agent=caller.user_agent,
        )
        facts.operation = operation
        result: dict[str, Any] | None = None
        failure: KmsError | None = None
        if not self._audit.available:
            # Fail closed, as the API does: what cannot be audited is not done.
            facts.principal, facts.region = caller.principal, caller.region
            failure = KMSInternalException(AUDIT_UNAVAILABLE_MESSAGE)
        else:
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    self._executor,
                    functools.partial(
                        self._dispatcher.invoke,
                        caller.principal,
                        caller.region,
                        operation,
                        body,
                        facts,
                    ),
                )
            except KmsError as error:
                failure = error
            except Exception:
                log.exception("console %s (%s) failed unexpectedly", facts.request_id, operation)
                failure = KMSInternalException("An internal error occurred.")
        if failure is not None:
            event = facts.outcome(failure.status, failure.code, failure.message)
        else:
            event = facts.outcome(200, None)
        durable = self._audit.submit(event)
        if durable is not None:
            try:
                await durable
            except AuditUnavailable:
                raise KMSInternalException(AUDIT_UNAVAILABLE_MESSAGE) from None
        if failure is not None:
            raise failure
        assert result is not None
        return result

    async def key_events(
        self, caller: Caller, key_arn: str, pages: int = 1, token: str | None = None
    ) -> dict[str, Any]:
        """One page (50) of the key's events from the trail, newest first, through
        CloudTrail's LookupEvents as the caller (its own account; cloudtrail:LookupEvents
        for anyone but the account's root user)."""
        if self._trail_api is None:
            return {"Events": []}
        params: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_arn}],
            "MaxResults": 50,
        }
        if token:
            params["NextToken"] = token
        call = TrailCall(
            caller.principal,
            "LookupEvents",
            params,
            caller.region,
            caller.source_address,
            caller.secure_transport,
        )
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._trail_api.call, call
        )
