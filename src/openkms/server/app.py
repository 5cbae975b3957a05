"""The ASGI application and the one envelope every API request goes through.

The envelope gives KMS (AWS JSON 1.1) and STS (AWS Query) the same treatment: a request id on
every answer, a bounded body, only POST runs an operation, one header of each kind that
decides what runs, errors rendered in the protocol's shape, and one audit event per request
(handed to the ``AuditSink`` with the facts the dispatcher gathered), durable before the
answer is sent; while the trail cannot be written, requests are refused before they run.
The protocol endpoints below it know nothing of HTTP; the dispatcher knows nothing of
protocols.

Read-only KMS requests run first on the event loop with database access forbidden: a warm
Encrypt or Decrypt is answered without a thread hop. One that needs the database after all
(``WouldBlock``, raised before any I/O) runs again on a worker thread, as do writes and STS.

The application is plain ASGI: a framework's routing and middleware would cost more per
request than the three routes here need.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from openkms.audit import AuditFacts, AuditUnavailable
from openkms.auth.sigv4 import SignedRequest
from openkms.console.app import ConsoleApp
from openkms.crypto.random_pool import random_uuid
from openkms.errors import (
    SEALED_MESSAGE,
    THROTTLED_MESSAGE,
    IncompleteSignatureException,
    KmsError,
    ServiceSealed,
    ServiceUnavailable,
    ThrottlingException,
    UnknownOperationException,
)
from openkms.protocol import json_protocol
from openkms.server.cloudtrail_api import CloudTrailEndpoint
from openkms.server.endpoints import (
    AUDIT_UNAVAILABLE_MESSAGE,
    Answer,
    Endpoint,
    IamEndpoint,
    KmsEndpoint,
    StsEndpoint,
)
from openkms.server.health import HealthDetails
from openkms.server.runtime import Runtime
from openkms.server.sys_api import SysApi
from openkms.storage.blocking import WouldBlock, forbid_blocking
from openkms.token_buckets import TokenBuckets

log = logging.getLogger("openkms.requests")
# The seal API's POSTs (unseal, seal, rotate) per source address and worker process: an
# operator gives a share or two a minute; a share guesser gets a handful a second.
SEAL_API_CALLS_PER_SECOND = 5.0
SEAL_API_THROTTLED = "Too many seal API calls from this address. Wait a second and retry."

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_QUERY_CONTENT_TYPE = b"application/x-www-form-urlencoded"
_JSON = json_protocol.CONTENT_TYPE.encode()
_UNKNOWN_OPERATION = json_protocol.encode_error(UnknownOperationException())
_HEALTHY = b'{"status": "ok"}'
# How long a request waits for another thread's catch-up to finish before going on.
_CATCH_UP_WAIT_SECONDS = 1.0


class BodyTooLarge(Exception):
    pass


class ClientDisconnect(Exception):
    pass


class BodyBudget:
    """Bytes of request bodies held in memory by this process before the requests are
    authenticated; a request that would take more than what is left is refused at once
    (``ThrottlingException``), so slow senders of large bodies cannot grow the process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.limit:
            raise ThrottlingException(THROTTLED_MESSAGE)
        self.used += size

    def give_back(self, size: int) -> None:
        self.used -= size


class OpenKmsApp:
    """``POST /`` (KMS and STS), ``GET /healthz``, ``/sys/…`` (the seal API), ``/console…``
    (the web console, ``openkms.console``); anything else an AWS-shaped 404/405."""

    def __init__(self, runtime: Runtime, io_threads: int = 32) -> None:
        self.runtime = runtime
        self._kms = KmsEndpoint(runtime.dispatcher)
        self._sts = StsEndpoint(runtime.authenticator, runtime.sts)
        self._iam = (
            IamEndpoint(runtime.authenticator, runtime.iam_admin) if runtime.iam_admin else None
        )
        self._cloudtrail = CloudTrailEndpoint(runtime.authenticator, runtime.trail_api)
        # The database pool has as many connections as there are threads to use them.
        self._executor = ThreadPoolExecutor(io_threads, thread_name_prefix="openkms-io")
        # 64 bodies of the largest size at once; KMS requests are a few KB.
        self._bodies = BodyBudget(64 * runtime.config.max_body_bytes)
        self._seal_api_calls = TokenBuckets(max_keys=10_000)
        seal = runtime.seal
        self._sys = SysApi(seal, runtime.authenticator, runtime.services.db) if seal else None
        self._health = HealthDetails(runtime)
        # Once per request, where its log line is made (openkms.metrics.recorder).
        self._record = runtime.metrics.request if runtime.metrics is not None else _no_metrics
        self._console = (
            ConsoleApp(runtime, self._executor, lambda: self._follow_seal(self._kms))
            if runtime.config.console
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/":
            if method == "POST":
                await self._api(scope, receive, send)
            else:
                # GET and HEAD too: they never run an operation.
                await _respond(send, 405, _UNKNOWN_OPERATION, _JSON, _new_request_id())
        elif path == "/healthz" and method in ("GET", "HEAD"):
            if _header(scope["headers"], b"authorization") is None:
                await _respond(send, 200, _HEALTHY, b"application/json", None)
            else:
                await self._health_details(scope, send)
        elif path.startswith("/sys/") and self._sys is not None:
            await self._seal_api(scope, receive, send)
        elif self._console is not None and (path == "/console" or path.startswith("/console/")):
            await self._console(scope, receive, send)
        else:
            await _respond(send, 404, _UNKNOWN_OPERATION, _JSON, _new_request_id())

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.runtime.audit.start()
                self.runtime.changes.start()
                self.runtime.jobs.start()
                self.runtime.start_metrics()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.runtime.stop_metrics()
                self.runtime.jobs.stop()
                self.runtime.changes.stop()
                self._executor.shutdown(wait=True)
                self.runtime.audit.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        request_id = _new_request_id()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        content_type = _header(headers, b"content-type") or b""
        target = _header(headers, b"x-amz-target")
        is_query = target is None and content_type.startswith(_QUERY_CONTENT_TYPE)
        endpoint: Endpoint = self._kms
        if is_query:
            endpoint = self._sts
            if self._iam is not None and _signing_service(headers) == b"iam":
                endpoint = self._iam
        elif target is not None and self._cloudtrail.serves(target):
            endpoint = self._cloudtrail  # CloudTrail's JSON API on the audit trail
        client = scope.get("client")
        user_agent = _header(headers, b"user-agent")
        facts = AuditFacts(
            request_id=request_id,
            service=endpoint.service,
            event_time=runtime.services.clock.now(),
            source_address=client[0] if client else None,
            secure_transport=scope.get("scheme") == "https",
            user_agent=user_agent.decode("latin-1") if user_agent else None,
        )
        error_code: str | None = None
        sealed_refusal = False
        error_message: str | None = None
        held = [0]
        try:
            _refuse_repeated_headers(headers)
            body = await _read_body(
                headers, receive, runtime.config.max_body_bytes, self._bodies, held
            )
            signed = _signed_request(scope, body)
            if not runtime.audit.available:
                # Fail closed: what cannot be audited is not done. The event of this refusal
                # is still submitted below; its write is the probe that finds the trail back.
                endpoint.name_operation(signed, facts)
                raise AuditUnavailable()
            answer = await self._run(endpoint, signed, facts, target)
        except KmsError as error:
            error_code, error_message = error.code, error.message
            answer = endpoint.error(error, request_id)
            sealed_refusal = isinstance(error, ServiceSealed | ServiceUnavailable)
        except AuditUnavailable:
            answer = endpoint.audit_unavailable(request_id)
            error_code, error_message = answer.error_code, AUDIT_UNAVAILABLE_MESSAGE
        except BodyTooLarge:
            error_code = "RequestTooLarge"
            answer = endpoint.too_large(request_id)
        except ClientDisconnect:
            # The client went away mid-body: nobody is left to answer, and it is not our fault.
            gone = facts.outcome(400, "ClientDisconnected")
            self._record(gone)
            runtime.audit.submit(gone, wait=False)
            return
        except Exception:
            # The traceback names code, not data: no request values are in it.
            log.exception("request %s (%s) failed unexpectedly", request_id, facts.operation)
            error_code = "InternalFailure"
            answer = endpoint.internal_error(request_id)
        finally:
            self._bodies.give_back(held[0])
        event = facts.outcome(answer.status, error_code or answer.error_code, error_message)
        self._record(event)
        if sealed_refusal:
            # Nothing ran, and the trail's signing key is under the seal: the refusal goes to
            # the request log only (as Vault's audit devices open only once it is unsealed).
            runtime.audit.log_only(event)
            await _respond(
                send, answer.status, answer.body, answer.content_type.encode(), request_id
            )
            return
        durable = runtime.audit.submit(event)
        if durable is not None:
            try:
                await durable
            except AuditUnavailable:
                # Nothing leaves unaudited: not the answer, not even a refusal of it.
                answer = endpoint.audit_unavailable(request_id)
        await _respond(send, answer.status, answer.body, answer.content_type.encode(), request_id)

    async def _seal_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._sys is not None
        request_id = _new_request_id()
        held = [0]
        try:
            body = await _read_body(scope["headers"], receive, 64 * 1024, self._bodies, held)
        except (BodyTooLarge, ThrottlingException):
            await _respond(send, 413, b'{"__type": "RequestTooLarge"}', _JSON, request_id)
            return
        except ClientDisconnect:
            return
        finally:
            self._bodies.give_back(held[0])
        client = scope.get("client")
        source = str(client[0]) if client else ""
        if scope["method"] == "POST" and not self._seal_api_calls.take(
            (source,), SEAL_API_CALLS_PER_SECOND
        ):
            # Nothing is counted: a caller guessing shares or flooding the operator's API
            # waits, whatever it sent (and is not logged per call: no log flood).
            reply = {"__type": "ThrottlingException", "message": SEAL_API_THROTTLED}
            await _respond(send, 429, json.dumps(reply).encode(), _JSON, request_id)
            return
        status, reply = await asyncio.get_running_loop().run_in_executor(
            self._executor,
            functools.partial(
                self._sys.handle, scope["path"], scope["method"], _signed_request(scope, body)
            ),
        )
        log.info("seal API %s %s: %d", scope["method"], scope["path"], status)
        await _respond(send, status, json.dumps(reply).encode(), _JSON, request_id)

    async def _health_details(self, scope: Scope, send: Send) -> None:
        """The operator's /healthz: the node's status (openkms.server.health)."""
        request_id = _new_request_id()
        status, reply = await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(self._health.handle, _signed_request(scope, b""))
        )
        log.info("operator status (GET /healthz, signed): %d", status)
        await _respond(send, status, json.dumps(reply).encode(), _JSON, request_id)

    async def _follow_seal(self, endpoint: Endpoint) -> None:
        """Apply a seal or unseal another worker did; refuse every API request while sealed."""
        seal = self.runtime.seal
        if seal is None:
            return
        if seal.is_behind():
            await asyncio.get_running_loop().run_in_executor(self._executor, seal.refresh)
        if seal.sealed:
            if endpoint is self._kms:
                raise ServiceSealed(SEALED_MESSAGE)
            raise ServiceUnavailable(SEALED_MESSAGE)

    async def _run(
        self, endpoint: Endpoint, signed: SignedRequest, facts: AuditFacts, target: bytes | None
    ) -> Answer:
        await self._follow_seal(endpoint)
        loop = asyncio.get_running_loop()
        changes = self.runtime.changes
        if changes.is_behind():
            # Another worker of this node committed a change: apply it before answering.
            # A database that cannot be read now must not fail (or queue) requests that do
            # not need it: the cache lifetime still bounds how stale an entry can be.
            try:
                await loop.run_in_executor(
                    self._executor, functools.partial(changes.catch_up, _CATCH_UP_WAIT_SECONDS)
                )
            except Exception as error:  # noqa: BLE001 - any failure: answer from the caches
                log.warning("change feed catch-up failed (%s); serving on", type(error).__name__)
        if endpoint is self._kms and self.runtime.dispatcher.may_run_inline(target):
            try:
                with forbid_blocking():
                    return endpoint.handle(signed, facts)
            except WouldBlock:
                pass  # nothing was read or written yet: run it again where blocking is fine
        return await loop.run_in_executor(
            self._executor, functools.partial(endpoint.handle, signed, facts)
        )


def _no_metrics(_event: object) -> None:
    pass


def create_app(runtime: Runtime) -> OpenKmsApp:
    return OpenKmsApp(runtime)


def _new_request_id() -> str:
    return random_uuid()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _signing_service(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The service a Query request was signed for (``…/<region>/iam/aws4_request``): STS and
    IAM share the protocol and, behind one endpoint URL, are told apart only by it."""
    authorization = _header(headers, b"authorization") or b""
    scope = authorization.partition(b"Credential=")[2].split(b",", 1)[0].split(b"/")
    return scope[3].strip() if len(scope) == 5 else None


def _refuse_repeated_headers(headers: list[tuple[bytes, bytes]]) -> None:
    """Headers that decide who is calling and what runs must appear once: first-one-wins
    would let a proxy and openkms disagree about the request."""
    authorizations = targets = 0
    for key, _ in headers:
        if key == b"authorization":
            authorizations += 1
        elif key == b"x-amz-target":
            targets += 1
    if authorizations > 1:
        raise IncompleteSignatureException(
            "The request must have exactly one Authorization header."
        )
    if targets > 1:
        raise UnknownOperationException()


async def _read_body(
    headers: list[tuple[bytes, bytes]],
    receive: Receive,
    limit: int,
    budget: BodyBudget,
    held: list[int],
) -> bytes:
    """The whole body, at most ``limit`` bytes, counted against ``budget`` (``held[0]``
    says how much this request holds, for the caller to give back)."""
    declared = _header(headers, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        budget.take(len(chunk))
        held[0] += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _signed_request(scope: Scope, body: bytes) -> SignedRequest:
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return SignedRequest(
        method=scope["method"],
        raw_path=raw_path.decode("latin-1").split("?", 1)[0],
        raw_query=scope.get("query_string", b"").decode("latin-1"),
        # Values keep their exact bytes (UTF-8, or escaped) so the signature hashes what
        # the client signed.
        headers=[
            (k.decode("latin-1").lower(), v.decode("utf-8", "surrogateescape"))
            for k, v in scope["headers"]
        ],
        body=body,
    )


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, request_id: str | None
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        headers.append((b"x-amzn-requestid", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
