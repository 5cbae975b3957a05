"""The web console at ``/console``: sign-in, sessions, CSRF, and the routes to the pages.

Routes (everything else is a 404 page):

    GET  /console                       -> the key list (or the sign-in page)
    GET  /console/sign-in, POST         sign in with an access key id and its secret
    POST /console/sign-out
    GET  /console/keys                  the key list
    GET  /console/keys/new, POST /console/keys            create a key
    GET  /console/keys/<key id>         a key's page
    POST /console/keys/<key id>/<action>                  an action on the key
    GET  /console/static/console.css

Every request but sign-in needs a session (``sessions``) whose access key is still active;
every POST needs the session's CSRF token in its form (the cookie being SameSite=Strict
already keeps other sites' forms from carrying it; the token also stops a page of this
origin that is not the console's). A refused POST changes nothing. Pages and forms run as
KMS operations through ``calls``, as the signed-in principal.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from importlib import resources
from typing import Any

from openkms.console import actions, pages
from openkms.console.calls import Caller, ConsoleCalls
from openkms.console.rendering import Templates
from openkms.console.sessions import COOKIE_NAME, ConsoleSession, ConsoleSessions, SignOuts
from openkms.console.web import (
    Disconnected,
    FormTooLarge,
    Receive,
    Request,
    Scope,
    Send,
    read_form,
    redirect,
    respond,
    session_cookie,
)
from openkms.errors import KmsError, ThrottlingException
from openkms.iam.principal import Principal
from openkms.server.endpoints import loggable_name
from openkms.server.runtime import Runtime
from openkms.token_buckets import TokenBuckets

log = logging.getLogger("openkms.console")

PREFIX = "/console"
SIGN_IN_FAILED = "Sign-in failed: the access key ID or the secret access key is wrong."
TOO_MANY_SIGN_INS = "Too many sign-in attempts from this address. Wait a moment and retry."
CROSS_ORIGIN = "This form was sent from another site's page, so nothing was done."
BAD_CSRF = (
    "This form's security token is missing or does not match your session, so nothing was "
    "done. Reload the page and try again."
)
# Sign-in attempts per source address and worker process: a person signs in now and then; a
# secret guesser gets a few a second (the secrets are 40 random characters anyway).
SIGN_INS_PER_SECOND = 5.0
_CSS = resources.files("openkms.console").joinpath("static/console.css").read_bytes()


class ConsoleApp:
    def __init__(
        self,
        runtime: Runtime,
        executor: Executor,
        follow_seal: Callable[[], Awaitable[None]],
    ) -> None:
        self._runtime = runtime
        self._executor = executor
        self._follow_seal = follow_seal
        root_key = runtime.services.root_key
        assert root_key is not None
        self._sessions = ConsoleSessions(
            root_key, runtime.services.clock, runtime.config.console_session_seconds
        )
        self._calls = ConsoleCalls(
            runtime.dispatcher, runtime.audit, executor, follow_seal, runtime.trail_api
        )
        self._sign_outs = SignOuts(runtime.services.db)
        self._sign_ins = TokenBuckets(max_keys=10_000)
        self._templates = Templates()
        regions = sorted(runtime.config.regions)
        self._default_region = regions[0] if regions else "us-east-1"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        try:
            await self._route(request, receive, send)
        except Disconnected:
            return
        except FormTooLarge:
            await self._page(send, 413, "error.html", title="Form too large", message="")
        except KmsError as error:
            # Sealed, audit trail unavailable: nothing was done.
            await self._error(send, error, None)
        except Exception:
            # The traceback names code, not data (no form value is in it).
            log.exception("console request to %r failed unexpectedly", request.path[:200])
            await self._page(send, 500, "error.html", title="Internal error", message="")

    async def _route(self, request: Request, receive: Receive, send: Send) -> None:
        path, method = request.path, request.method
        if path in (PREFIX, PREFIX + "/"):
            await redirect(send, f"{PREFIX}/keys")
            return
        if path == f"{PREFIX}/static/console.css":
            await respond(send, 200, _CSS, b"text/css; charset=utf-8")
            return
        if method == "POST" and request.cross_origin():
            # Another site's form: refused before anything is read, sign-in included (so no
            # page elsewhere can sign a browser in to an account of its choosing).
            log.warning("console: a cross-origin POST to %r refused", path[:200])
            await self._page(send, 403, "error.html", title="Request refused", message=CROSS_ORIGIN)
            return
        if path == f"{PREFIX}/sign-in":
            if method == "POST":
                await read_form(request, receive)
                await self._sign_in(request, send)
            else:
                await self._sign_in_page(send, 200, request)
            return
        session = self._sessions.open(request.cookie(COOKIE_NAME))
        principal = await self._principal(session, request)
        if session is None or principal is None:
            # Never signed in, signed out, expired or the access key deactivated: nothing is
            # done, whatever was asked; a sign-in page says why.
            reason = "expired" if request.cookie(COOKIE_NAME) else "required"
            await redirect(send, f"{PREFIX}/sign-in?session={reason}", [_clear_cookie(request)])
            return
        caller = Caller(
            principal,
            session.region,
            request.source_address,
            request.secure,
            request.header(b"user-agent"),
        )
        context = {"caller": caller, "session": session}
        if method == "POST":
            await read_form(request, receive)
            if not session.csrf_matches(request.field("csrf")):
                log.warning("console: a POST to %r without a valid CSRF token refused", path[:200])
                await self._page(
                    send, 403, "error.html", title="Request refused", message=BAD_CSRF, **context
                )
                return
            await self._post(request, send, caller, context)
        elif method in ("GET", "HEAD"):
            await self._get(request, send, caller, context)
        else:
            await self._page(send, 405, "error.html", title="Method not allowed", **context)

    async def _principal(
        self, session: ConsoleSession | None, request: Request
    ) -> Principal | None:
        """The session's principal, if its access key is still active and has not signed
        out since the session began."""
        if session is None:
            return None

        def look_up() -> Principal | None:
            principal = self._runtime.authenticator.principal_of(
                session.access_key_id, request.source_address
            )
            if principal is None or not self._sign_outs.still_valid(session):
                return None
            return principal

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, look_up)
        except ThrottlingException:
            return None

    # -- sign-in -----------------------------------------------------------------------------

    async def _sign_in_page(
        self, send: Send, status: int, request: Request, message: str | None = None
    ) -> None:
        session_state = request.query("session")
        notice = {
            "expired": "Your session has ended. Sign in again.",
            "required": "Sign in to use the console.",
            "signed-out": "You are signed out.",
        }.get(session_state or "")
        await self._page(
            send,
            status,
            "sign_in.html",
            message=message,
            notice=notice,
            access_key_id=request.field("AccessKeyId"),
            region=request.field("Region") or self._default_region,
        )

    async def _sign_in(self, request: Request, send: Send) -> None:
        await self._follow_seal()
        access_key_id = request.field("AccessKeyId").strip()
        region = request.field("Region").strip() or self._default_region
        if not self._runtime.config.region_allowed(region):
            message = f"This server does not serve the region {region}."
            await self._sign_in_page(send, 400, request, message)
            return
        if not self._sign_ins.take((request.source_address or "-",), SIGN_INS_PER_SECOND):
            await self._sign_in_page(send, 429, request, TOO_MANY_SIGN_INS)
            return
        try:
            principal = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                self._runtime.authenticator.verify_secret,
                access_key_id,
                request.field("SecretAccessKey"),
                request.source_address,
            )
        except ThrottlingException:
            await self._sign_in_page(send, 429, request, TOO_MANY_SIGN_INS)
            return
        # The access key id only (made fit for a log line), never the secret.
        name = loggable_name(access_key_id)
        if principal is None:
            log.info("console sign-in refused for %s from %s", name, request.source_address)
            await self._sign_in_page(send, 401, request, SIGN_IN_FAILED)
            return
        cookie, _ = self._sessions.issue(access_key_id, region)
        log.info("console sign-in of %s from %s", principal.arn, request.source_address)
        max_age = int(self._sessions.lifetime_seconds)
        await redirect(
            send,
            f"{PREFIX}/keys",
            [(b"set-cookie", session_cookie(COOKIE_NAME, cookie, max_age, request.secure))],
        )

    # -- pages and actions --------------------------------------------------------------------

    async def _get(
        self, request: Request, send: Send, caller: Caller, context: dict[str, Any]
    ) -> None:
        parts = request.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["keys"]:
            try:
                rows, total = await pages.key_list(self._calls, caller)
            except KmsError as error:
                await self._error(send, error, context)
                return
            await self._page(send, 200, "keys.html", keys=rows, total=total, **context)
        elif parts == ["keys", "new"]:
            await self._page(
                send,
                200,
                "create_key.html",
                key_specs=actions.KEY_SPECS,
                key_usages=actions.KEY_USAGES,
                **context,
            )
        elif len(parts) == 2 and parts[0] == "keys":
            try:
                all_events = request.query("events") == "all"
                page = await pages.key_page(self._calls, caller, parts[1], all_events)
            except KmsError as error:
                await self._error(send, error, context)
                return
            notice = actions.NOTICES.get(request.query("done") or "")
            await self._page(
                send,
                200,
                "key.html",
                key=page.metadata,
                page=page,
                notice=notice,
                all_events=all_events,
                **context,
            )
        else:
            await self._page(send, 404, "error.html", title="Not found", **context)

    async def _post(
        self, request: Request, send: Send, caller: Caller, context: dict[str, Any]
    ) -> None:
        parts = request.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["sign-out"]:
            session: ConsoleSession = context["session"]
            now = self._runtime.services.clock.now()
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._sign_outs.sign_out, session, now
            )
            log.info("console sign-out of %s", caller.principal.arn)
            await redirect(send, f"{PREFIX}/sign-in?session=signed-out", [_clear_cookie(request)])
            return
        try:
            if parts == ["keys"]:
                created = await self._calls.kms(caller, "CreateKey", actions.create_key(request))
                key_id = created["KeyMetadata"]["KeyId"]
                if request.field("AliasName").strip():
                    alias = actions.alias_name(request.field("AliasName"))
                    body = {"AliasName": alias, "TargetKeyId": key_id}
                    try:
                        await self._calls.kms(caller, "CreateAlias", body)
                    except KmsError as error:
                        # The key stays (as with the CLI's two calls); its page is one click away.
                        back = f"{PREFIX}/keys/{_quote(key_id)}"
                        await self._error(send, error, context, back, "Key created, alias not")
                        return
                await redirect(send, f"{PREFIX}/keys/{_quote(key_id)}?done=created")
                return
            if len(parts) == 3 and parts[0] == "keys" and parts[2] in actions.KEY_ACTIONS:
                key_id = parts[1]
                action = actions.KEY_ACTIONS[parts[2]](key_id, request)
                await self._calls.kms(caller, action.operation, action.body)
                await redirect(send, f"{PREFIX}/keys/{_quote(key_id)}?done={parts[2]}")
                return
        except KmsError as error:
            back = f"{PREFIX}/keys/{_quote(parts[1])}" if len(parts) >= 2 else f"{PREFIX}/keys"
            await self._error(send, error, context, back)
            return
        await self._page(send, 404, "error.html", title="Not found", **context)

    # -- rendering -----------------------------------------------------------------------------

    async def _error(
        self,
        send: Send,
        error: KmsError,
        context: dict[str, Any] | None,
        back: str | None = None,
        title: str | None = None,
    ) -> None:
        denied = error.code == "AccessDeniedException"
        await self._page(
            send,
            error.status,
            "error.html",
            title=title or ("Access denied" if denied else "The request failed"),
            message=pages.describe_error(error),
            denied=denied,
            back=back,
            **(context or {}),
        )

    async def _page(self, send: Send, status: int, template: str, **values: Any) -> None:
        await respond(send, status, self._templates.render(template, **values))


def _clear_cookie(request: Request) -> tuple[bytes, bytes]:
    return b"set-cookie", session_cookie(COOKIE_NAME, "", 0, request.secure)


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")
