"""The dispatcher: every KMS request runs the same steps, in the same order, from its
operation's declaration.

    authenticate -> validate against the model -> operation input rules -> resolve the
    resources -> authorise every (action, resource) -> request quota -> key state (AWS's
    table) -> key usage, ciphertext binding, algorithm -> input rules that depend on the
    key -> dry run -> the handler

Authorisation comes before the state check, so a caller who may not use a key learns nothing
about it (not even that it is disabled); the state check comes before usage and spec, as AWS
answers ``DisabledException`` for a disabled key of the wrong kind. The envelope hands each
outcome, with the facts gathered here, to the audit sink.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from openkms.audit.events import AuditFacts
from openkms.auth.authenticator import Authenticator
from openkms.auth.sigv4 import SignedRequest
from openkms.authz import AuthorizationRequest, Authorizer
from openkms.authz.grant_tokens import grant_ids_of
from openkms.crypto.ciphertext_blob import CiphertextBlob, MalformedBlob
from openkms.crypto.key_specs import spec_info
from openkms.domain.key_states import STATE_TABLE, check_state
from openkms.errors import (
    DRY_RUN_MESSAGE,
    DependencyTimeoutException,
    DryRunOperationException,
    IncorrectKeyException,
    InvalidCiphertextException,
    InvalidKeyUsageException,
    KMSInternalException,
    KMSInvalidStateException,
    UnknownOperationException,
    UnsupportedOperationException,
)
from openkms.iam.principal import Principal
from openkms.keystore import UnsupportedByKeyStore
from openkms.keystore.token_keys import StoreNotConnected, TokenUnreachable
from openkms.model import ServiceModel, validate_input
from openkms.ops.aliases import stored_aliases_reader
from openkms.ops.context import RequestContext, Services
from openkms.ops.declaration import (
    ACCOUNT_RESOURCE,
    Call,
    Declaration,
    Handler,
    KeyUse,
    Resolve,
    Resolved,
)
from openkms.ops.quotas import RequestQuotas
from openkms.ops.resolution import request_blob, resolve
from openkms.ops.tags import stored_tags_reader
from openkms.protocol import json_protocol
from openkms.storage import StorageUnavailable


class DeclarationError(Exception):
    """Declarations, handlers and the service model disagree: the server must not start."""


class Dispatcher:
    def __init__(
        self,
        model: ServiceModel,
        services: Services,
        authenticator: Authenticator,
        authorizer: Authorizer,
        declarations: Mapping[str, Declaration],
        handlers: Mapping[str, Handler],
        quotas: RequestQuotas | None = None,
    ) -> None:
        check_declarations(model, declarations, handlers)
        self.quotas = quotas
        self.model = model
        self.services = services
        self.authenticator = authenticator
        self.authorizer = authorizer
        self._declarations = dict(declarations)
        self._handlers = dict(handlers)
        # X-Amz-Target values of operations that only read: they may first try to run on
        # the event loop (openkms.storage.blocking); writes go straight to a worker thread.
        self._inline_targets = frozenset(
            f"{model.target_prefix}.{name}".encode()
            for name, declaration in declarations.items()
            if declaration.read_only and declaration.implemented and name in handlers
        )

    def may_run_inline(self, target: bytes | None) -> bool:
        return target in self._inline_targets

    # -- entry points ---------------------------------------------------------------------

    def handle(
        self, signed: SignedRequest, target: str | None, body: bytes, facts: AuditFacts
    ) -> dict[str, Any]:
        """One KMS request off the wire."""
        authenticated = self.authenticator.authenticate(signed, "kms", facts.source_address)
        facts.principal = authenticated.principal
        facts.region = authenticated.region
        operation = json_protocol.operation_from_target(target, self.model.target_prefix)
        if not self.model.has_operation(operation):
            raise UnknownOperationException()
        facts.operation = operation
        self._refuse_unbuilt(operation)
        parameters = validate_input(self.model, operation, json_protocol.decode_body(body))
        ctx = RequestContext(
            authenticated.principal,
            authenticated.region,
            facts.request_id,
            source_ip=facts.source_address,
            secure_transport=facts.secure_transport,
        )
        return self.run(operation, ctx, parameters, facts)

    def invoke(
        self,
        principal: Principal,
        region: str,
        operation: str,
        body: Mapping[str, Any],
        facts: AuditFacts | None = None,
    ) -> dict[str, Any]:
        """One request without HTTP or SigV4 (background jobs with a service principal; the
        web console, as its signed-in principal; the in-process test tier). ``body`` is the
        request as JSON would carry it (blobs base64)."""
        if facts is None:
            facts = AuditFacts(str(uuid.uuid4()), "kms", self.services.clock.now())
        if not self.model.has_operation(operation):
            raise UnknownOperationException()
        facts.principal, facts.region, facts.operation = principal, region, operation
        self._refuse_unbuilt(operation)
        parameters = validate_input(self.model, operation, dict(body))
        # The facts' source and transport feed aws:SourceIp / aws:SecureTransport (a web
        # console request has them; a background job has neither).
        ctx = RequestContext(
            principal,
            region,
            facts.request_id,
            source_ip=facts.source_address,
            secure_transport=facts.secure_transport,
        )
        return self.run(operation, ctx, parameters, facts)

    def _refuse_unbuilt(self, operation: str) -> None:
        # Before validation, as before: an unbuilt operation says so whatever its input.
        if operation not in self._declarations or operation not in self._handlers:
            raise UnsupportedOperationException(
                f"{operation} is not supported by this openkms server yet."
            )

    def run(
        self,
        operation: str,
        ctx: RequestContext,
        params: dict[str, Any],
        facts: AuditFacts,
    ) -> dict[str, Any]:
        declaration = self._declarations[operation]
        handler = self._handlers[operation]
        facts.read_only = declaration.read_only
        facts.parameters = {
            name: params[name] for name in declaration.audit_parameters if name in params
        }
        if declaration.check_input is not None:
            declaration.check_input(params)
        for member, message in declaration.unsupported_members.items():
            if member in params:
                raise UnsupportedOperationException(message)
        # Before anything is looked up: a token that is not one is refused whatever it names.
        grant_ids = grant_ids_of(params.get("GrantTokens"))
        try:
            resolved = resolve(declaration.resolve, self.services, ctx, params)
            facts.resources = _resources(resolved)
            self._authorize(declaration, ctx, params, resolved, grant_ids)
            if self.quotas is not None and not facts.quota_charged:
                # After authorisation: the class depends on the key's type, which a caller
                # who may not use the key must not be able to probe.
                primary = resolved.keys.get("key") or resolved.keys.get("source")
                spec = primary.record.key_spec if primary is not None else None
                facts.quota_charged = True
                self.quotas.charge(ctx.account_id, ctx.region, operation, spec)
            self._check_states(declaration, resolved)
            for use in declaration.key_uses:
                self._check_use(declaration, use, params, resolved)
            if declaration.check_with_keys is not None:
                declaration.check_with_keys(params, resolved)
            if declaration.dry_run and params.get("DryRun"):
                raise DryRunOperationException(DRY_RUN_MESSAGE)
            result = handler(self.services, Call(ctx, params, resolved))
            if not declaration.read_only:
                # CloudTrail records what a write answered; the event keeps no secret of it.
                facts.response = result
            return result
        except UnsupportedByKeyStore as error:
            raise UnsupportedOperationException(str(error)) from None
        except StoreNotConnected:
            # Disconnected on another process or node after this one loaded the key (the
            # change feed's bound): as AWS answers for a key in a disconnected store.
            used = facts.resources[0][1] if facts.resources else "The KMS key"
            raise KMSInvalidStateException(f"{used} is unavailable.") from None
        except TokenUnreachable as failure:
            raise KMSInternalException(
                "The custom key store's PKCS#11 token could not be used "
                f"({failure.code}). Try the request again."
            ) from None
        except StorageUnavailable:
            raise DependencyTimeoutException(
                "The request could not be completed because the key store's database did "
                "not answer in time. Try the request again."
            ) from None

    # -- the steps --------------------------------------------------------------------------

    def _authorize(
        self,
        declaration: Declaration,
        ctx: RequestContext,
        params: dict[str, Any],
        resolved: Resolved,
        grant_ids: tuple[str, ...],
    ) -> None:
        source, destination = resolved.keys.get("source"), resolved.keys.get("destination")
        same_key = (
            source.record.key_id == destination.record.key_id
            if source is not None and destination is not None
            else None
        )
        now, db = self.services.clock.now(), self.services.db
        for permission in declaration.permissions:
            if permission.only_with is not None and permission.only_with not in params:
                continue
            key = resolved.keys.get(permission.role)
            if key is not None:
                arn, account = key.record.arn, key.record.account_id
            elif permission.role == "alias" and resolved.alias_arn is not None:
                arn, account = resolved.alias_arn, ctx.account_id
            else:
                arn, account = ACCOUNT_RESOURCE, ctx.account_id
            self.authorizer.authorize(
                AuthorizationRequest(
                    principal=ctx.principal,
                    action=permission.action,
                    resource_arn=arn,
                    resource_account=account,
                    region=ctx.region,
                    key=key,
                    parameters=params,
                    when=now,
                    source_ip=ctx.source_ip,
                    secure_transport=ctx.secure_transport,
                    resource_tags=(
                        None if key is None else stored_tags_reader(db, key.record.key_id)
                    ),
                    resource_aliases=(
                        None if key is None else stored_aliases_reader(db, key.record)
                    ),
                    same_key=same_key,
                    grant_ids=grant_ids,
                    grant=resolved.grant,
                )
            )

    def _check_states(self, declaration: Declaration, resolved: Resolved) -> None:
        roles = declaration.state_roles
        for role, key in resolved.keys.items():
            if roles is None or role in roles:
                check_state(declaration.name, key.record.arn, key.record.key_state)

    def _check_use(
        self, declaration: Declaration, use: KeyUse, params: dict[str, Any], resolved: Resolved
    ) -> None:
        key = resolved.keys.get(use.role)
        if key is None:
            return
        record = key.record
        spec = spec_info(record.key_spec)
        ciphertext_role = declaration.resolve in (
            Resolve.CIPHERTEXT,
            Resolve.RE_ENCRYPT,
        ) and use.role in ("key", "source")
        if ciphertext_role and record.key_usage not in use.usages:
            # A blob naming another key than the one named is that mismatch before it is a
            # usage error (AWS: a symmetric key's ciphertext with an HMAC KeyId is
            # IncorrectKeyException).
            _refuse_blob_of_another_key(params, record.key_id)
        if record.key_usage not in use.usages:
            action = next(p.action for p in declaration.permissions if p.role == use.role)
            raise InvalidKeyUsageException(
                f"{record.arn} key usage is {record.key_usage} which is not valid for "
                f"{action.removeprefix('kms:')}."
            )
        if use.symmetric_only and not spec.symmetric:
            raise InvalidKeyUsageException(
                f"{record.arn} key KeySpec is {record.key_spec} which is not valid for "
                f"{declaration.name}."
            )
        # Only symmetric keys' ciphertexts name their key; an RSA ciphertext is bare OAEP.
        if ciphertext_role and spec.symmetric:
            _bind_ciphertext(params, resolved, use.role)
        if use.algorithm_parameter is None or use.family is None:
            return
        algorithm = params.get(use.algorithm_parameter, use.default_algorithm)
        if algorithm == "SYMMETRIC_DEFAULT" and not spec.symmetric and ciphertext_role:
            # AWS reads the ciphertext as a symmetric key's before it compares the algorithm
            # with the key: an RSA key named without its algorithm finds no such ciphertext.
            raise InvalidCiphertextException()
        if algorithm is not None and algorithm not in spec.algorithms(use.family):
            raise InvalidKeyUsageException(
                f"Algorithm {algorithm} is incompatible with key spec {record.key_spec}."
            )


_INCORRECT_KEY = (
    "The key ID in the request does not identify a CMK that can perform this operation."
)


def _ignores_ciphertext(params: dict[str, Any]) -> bool:
    """A dry run with IGNORE_CIPHERTEXT checks the named key only."""
    return bool(params.get("DryRun")) and "IGNORE_CIPHERTEXT" in params.get("DryRunModifiers", [])


def _refuse_blob_of_another_key(params: dict[str, Any], key_id: str) -> None:
    """When the ciphertext is a blob at all: it must name ``key_id``."""
    if _ignores_ciphertext(params) or params.get("CiphertextBlob") is None:
        return
    try:
        blob = CiphertextBlob.parse(params["CiphertextBlob"])
    except MalformedBlob:
        return
    if blob.key_id != key_id:
        raise IncorrectKeyException(_INCORRECT_KEY)


def _bind_ciphertext(params: dict[str, Any], resolved: Resolved, role: str) -> None:
    """Match the ciphertext to the key the caller named (the blob was parsed during
    resolution when no key was named)."""
    if resolved.blob is not None or _ignores_ciphertext(params):
        return
    blob = request_blob(params)
    if blob.key_id != resolved.keys[role].record.key_id:
        raise IncorrectKeyException(_INCORRECT_KEY)
    resolved.blob = blob


def _resources(resolved: Resolved) -> list[tuple[str, str]]:
    resources = [(role, key.record.arn) for role, key in resolved.keys.items()]
    if resolved.alias_arn is not None:
        resources.append(("alias", resolved.alias_arn))
    return resources


def check_declarations(
    model: ServiceModel,
    declarations: Mapping[str, Declaration],
    handlers: Mapping[str, Handler],
) -> None:
    """Refuse to start when a declaration names no operation of the model, a handler has no
    declaration, an implemented declaration has no handler, DryRun is declared unlike the
    model, or an audit parameter could carry a secret."""
    problems: list[str] = []
    for name, declaration in declarations.items():
        if name != declaration.name:
            problems.append(f"declaration {declaration.name} is filed under {name}")
        if not model.has_operation(name):
            problems.append(f"declaration {name} names no operation of the KMS model")
            continue
        members = model.input_members(name)
        if declaration.dry_run != ("DryRun" in members):
            problems.append(f"{name}: DryRun declared {declaration.dry_run}, model disagrees")
        for parameter in declaration.audit_parameters:
            if parameter not in members:
                problems.append(f"{name}: audit parameter {parameter} is not a request member")
            elif model.may_hold_secret(members[parameter]):
                problems.append(f"{name}: audit parameter {parameter} may hold a secret")
        if declaration.implemented and name not in handlers:
            problems.append(f"{name} is declared implemented but has no handler")
        if not declaration.implemented and name in handlers:
            problems.append(f"{name} has a handler but is declared not implemented")
        if name not in STATE_TABLE and declaration.resolve not in (
            Resolve.ACCOUNT,
            Resolve.CUSTOM_KEY_STORE,
        ):
            problems.append(f"{name} resolves keys but has no row in the key-state table")
    for name in handlers:
        if name not in declarations:
            problems.append(f"handler {name} has no declaration")
    if problems:
        raise DeclarationError("; ".join(problems))
