"""The ASGI application: one POST endpoint for KMS (JSON 1.1) and STS (Query), and /healthz.

Each request runs authentication, validation and its operation in one worker thread, so the
event loop never blocks on the database; a warm request touches no database at all.
"""

from __future__ import annotations

import logging
import uuid

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from openkms.auth.sigv4 import SignedRequest
from openkms.errors import (
    KmsError,
    KMSInternalException,
    SerializationException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from openkms.model import validate_input
from openkms.ops import OPERATIONS
from openkms.ops.context import RequestContext
from openkms.protocol import json_protocol, query_protocol
from openkms.server.runtime import Runtime

log = logging.getLogger("openkms.requests")


class BodyTooLarge(Exception):
    pass


def create_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def api(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if request.headers.get("x-amz-target") is None and _is_query_request(request):
            return await _sts(runtime, request, request_id)
        return await _kms(runtime, request, request_id)

    async def not_routed(request: Request, exc: Exception) -> Response:
        # Other paths and methods get an AWS-shaped answer too, never a framework page.
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        response = Response(
            json_protocol.encode_error(UnknownOperationException()),
            status_code=status,
            media_type=json_protocol.CONTENT_TYPE,
        )
        response.headers["x-amzn-RequestId"] = str(uuid.uuid4())
        return response

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/", api, methods=["POST", "GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_routed})


def _is_query_request(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.startswith("application/x-www-form-urlencoded") or (
        request.method == "GET" and "Action=" in request.url.query
    )


async def _read_body(request: Request, limit: int) -> bytes:
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


async def _kms(runtime: Runtime, request: Request, request_id: str) -> Response:
    operation = "-"
    try:
        try:
            body = await _read_body(request, runtime.config.max_body_bytes)
        except BodyTooLarge:
            raise SerializationException("The request body is too large.") from None
        signed = _signed_request(request, body)
        target = request.headers.get("x-amz-target")
        operation = _loggable_operation(target)
        operation, result = await run_in_threadpool(
            _handle_kms, runtime, signed, target, body, request_id
        )
        response = Response(
            json_protocol.encode_body(result),
            status_code=200,
            media_type=json_protocol.CONTENT_TYPE,
        )
        _log(request_id, operation, 200, None)
    except KmsError as error:
        response = _kms_error(error)
        _log(request_id, operation, error.status, error.code)
    except Exception:
        # The traceback names code, not data: no request values are in it.
        log.exception("request %s (%s) failed unexpectedly", request_id, operation)
        response = _kms_error(KMSInternalException("An internal error occurred."))
    response.headers["x-amzn-RequestId"] = request_id
    return response


def _handle_kms(
    runtime: Runtime, signed: SignedRequest, target: str | None, body: bytes, request_id: str
) -> tuple[str, dict]:
    authenticated = runtime.authenticator.authenticate(signed, "kms")
    operation = json_protocol.operation_from_target(target, runtime.model.target_prefix)
    if not runtime.model.has_operation(operation):
        raise UnknownOperationException()
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise UnsupportedOperationException(
            f"{operation} is not supported by this openkms server yet."
        )
    parameters = validate_input(runtime.model, operation, json_protocol.decode_body(body))
    ctx = RequestContext(authenticated.principal, authenticated.region, request_id)
    return operation, handler(runtime.services, ctx, parameters)


def _kms_error(error: KmsError) -> Response:
    return Response(
        json_protocol.encode_error(error),
        status_code=error.status,
        media_type=json_protocol.CONTENT_TYPE,
    )


async def _sts(runtime: Runtime, request: Request, request_id: str) -> Response:
    try:
        return await _sts_action(runtime, request, request_id)
    except Exception:
        log.exception("request %s (sts) failed unexpectedly", request_id)
        body = query_protocol.error_xml("InternalFailure", "", request_id)
        return _xml(body, 500, request_id)


async def _sts_action(runtime: Runtime, request: Request, request_id: str) -> Response:
    try:
        body = await _read_body(request, runtime.config.max_body_bytes)
    except BodyTooLarge:
        return Response(status_code=413)
    signed = _signed_request(request, body)
    params = query_protocol.decode_parameters(signed.raw_query, body)
    action = params.get("Action", "")
    loggable = f"sts:{_loggable_name(action)}"
    try:
        authenticated = await run_in_threadpool(runtime.authenticator.authenticate, signed, "sts")
    except KmsError as error:
        code, status = query_protocol.query_error(error)
        _log(request_id, loggable, status, code)
        return _xml(
            query_protocol.error_xml(code, error.message or "", request_id), status, request_id
        )
    version = params.get("Version") or "NO_VERSION_SPECIFIED"
    if action != "GetCallerIdentity" or version != "2011-06-15":
        _log(request_id, loggable, 400, "InvalidAction")
        message = f"Could not find operation {action} for version {version}"
        return _xml(
            query_protocol.error_xml(
                "InvalidAction", message, request_id, query_protocol.FAULT_NAMESPACE
            ),
            400,
            request_id,
        )
    principal = authenticated.principal
    _log(request_id, "sts:GetCallerIdentity", 200, None)
    return _xml(
        query_protocol.caller_identity_xml(
            principal.arn, principal.user_id, principal.account_id, request_id
        ),
        200,
        request_id,
    )


def _xml(body: bytes, status: int, request_id: str) -> Response:
    response = Response(body, status_code=status, media_type=query_protocol.CONTENT_TYPE)
    response.headers["x-amzn-RequestId"] = request_id
    return response


def _loggable_operation(target: str | None) -> str:
    return _loggable_name((target or "").partition(".")[2])


def _loggable_name(name: str) -> str:
    """An operation name fit for a log line: letters and digits only, never what a caller
    chose to write there (no newlines, no forged entries)."""
    name = name[:64]
    return name if name.isascii() and name.isalnum() else "-"


def _log(request_id: str, operation: str, status: int, code: str | None) -> None:
    log.info("%s %s %d %s", request_id, operation, status, code or "OK")
