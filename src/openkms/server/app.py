"""The ASGI application and the one envelope every API request goes through.

The envelope gives KMS (AWS JSON 1.1) and STS (AWS Query) the same treatment: a request id on
every answer, a bounded body, only POST runs an operation, one header of each kind that
decides what runs, errors rendered in the protocol's shape, and one audit event per request
(handed to the ``AuditSink`` with the facts the dispatcher gathered). The protocol endpoints
below it know nothing of HTTP; the dispatcher knows nothing of protocols.
"""

from __future__ import annotations

import logging
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openkms.audit import AuditFacts
from openkms.auth.sigv4 import SignedRequest
from openkms.errors import IncompleteSignatureException, KmsError, UnknownOperationException
from openkms.protocol import json_protocol
from openkms.server.endpoints import Answer, Endpoint, KmsEndpoint, StsEndpoint
from openkms.server.runtime import Runtime

log = logging.getLogger("openkms.requests")

REQUEST_ID_HEADER = "x-amzn-RequestId"


class BodyTooLarge(Exception):
    pass


def create_app(runtime: Runtime) -> Starlette:
    kms = KmsEndpoint(runtime.dispatcher)
    sts = StsEndpoint(runtime.authenticator)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def api(request: Request) -> Response:
        endpoint: Endpoint = sts if _is_query_request(request) else kms
        return await _envelope(runtime, endpoint, request)

    async def not_routed(request: Request, exc: Exception) -> Response:
        # Other paths and methods (GET and HEAD included: they never run an operation) get an
        # AWS-shaped answer too, never a framework page.
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        response = Response(
            json_protocol.encode_error(UnknownOperationException()),
            status_code=status,
            media_type=json_protocol.CONTENT_TYPE,
        )
        response.headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
        return response

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", api, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_routed})


def _is_query_request(request: Request) -> bool:
    if request.headers.get("x-amz-target") is not None:
        return False
    return request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")


async def _envelope(runtime: Runtime, endpoint: Endpoint, request: Request) -> Response:
    request_id = str(uuid.uuid4())
    client = request.client
    facts = AuditFacts(
        request_id=request_id,
        service=endpoint.service,
        event_time=runtime.services.clock.now(),
        source_address=client.host if client else None,
        user_agent=request.headers.get("user-agent"),
    )
    answer: Answer | None = None
    error_code: str | None = None
    try:
        _refuse_repeated_headers(request)
        body = await _read_body(request, runtime.config.max_body_bytes)
        answer = await run_in_threadpool(endpoint.handle, _signed_request(request, body), facts)
    except KmsError as error:
        error_code = error.code
        answer = endpoint.error(error, request_id)
    except BodyTooLarge:
        error_code = "RequestTooLarge"
        answer = endpoint.too_large(request_id)
    except ClientDisconnect:
        # The client went away mid-body: nobody is left to answer, and it is not our fault.
        error_code = "ClientDisconnected"
        answer = Answer(400, b"", endpoint.content_type)
    except Exception:
        # The traceback names code, not data: no request values are in it.
        log.exception("request %s (%s) failed unexpectedly", request_id, facts.operation)
        error_code = "InternalFailure"
        answer = endpoint.internal_error(request_id)
    if error_code is None:
        error_code = answer.error_code
    runtime.audit.record(facts.outcome(answer.status, error_code))
    response = Response(answer.body, status_code=answer.status, media_type=answer.content_type)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _refuse_repeated_headers(request: Request) -> None:
    """Headers that decide who is calling and what runs must appear once: first-one-wins
    would let a proxy and openkms disagree about the request."""
    if len(request.headers.getlist("authorization")) > 1:
        raise IncompleteSignatureException(
            "The request must have exactly one Authorization header."
        )
    if len(request.headers.getlist("x-amz-target")) > 1:
        raise UnknownOperationException()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _signed_request(request: Request, body: bytes) -> SignedRequest:
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    return SignedRequest(
        method=request.method,
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
