"""Every operation is declared once, and a server whose declarations, handlers and model
disagree refuses to start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from openkms.domain.key_states import STATE_TABLE
from openkms.model import load_kms_model
from openkms.ops import DECLARATIONS, HANDLERS
from openkms.ops.declaration import Declaration, Permission, Resolve
from openkms.ops.dispatcher import DeclarationError, check_declarations

MODEL = load_kms_model()


def test_every_operation_of_the_model_is_declared_once():
    assert len(MODEL.operations) == 56
    assert set(DECLARATIONS) == set(MODEL.operations)
    assert all(name == d.name for name, d in DECLARATIONS.items())


def test_the_shipped_declarations_pass_the_start_up_check():
    check_declarations(MODEL, DECLARATIONS, HANDLERS)


def test_every_declared_action_is_a_kms_action_on_a_known_role():
    roles = {"key", "source", "destination", "alias", "old_key", "account"}
    for declaration in DECLARATIONS.values():
        assert declaration.permissions, declaration.name
        for permission in declaration.permissions:
            assert permission.action.startswith("kms:"), declaration.name
            assert permission.role in roles, declaration.name


def test_aws_documented_multi_resource_actions():
    re_encrypt = DECLARATIONS["ReEncrypt"].permissions
    assert Permission("kms:ReEncryptFrom", "source") in re_encrypt
    assert Permission("kms:ReEncryptTo", "destination") in re_encrypt
    assert {p.role for p in DECLARATIONS["CreateAlias"].permissions} == {"alias", "key"}
    assert {p.role for p in DECLARATIONS["UpdateAlias"].permissions} == {"alias", "key", "old_key"}
    assert {p.role for p in DECLARATIONS["DeleteAlias"].permissions} == {"alias", "key"}
    for account_level in ("CreateKey", "ListKeys", "GenerateRandom", "CreateCustomKeyStore"):
        assert DECLARATIONS[account_level].permissions[0].role == "account"


def test_every_operation_on_a_key_has_a_row_in_the_key_state_table():
    for name, declaration in DECLARATIONS.items():
        if declaration.resolve not in (Resolve.ACCOUNT, Resolve.CUSTOM_KEY_STORE):
            assert len(STATE_TABLE[name]) == 7, name


def test_no_audit_parameter_can_carry_a_secret():
    for name, declaration in DECLARATIONS.items():
        members = MODEL.input_members(name)
        for parameter in declaration.audit_parameters:
            assert not MODEL.may_hold_secret(members[parameter]), (name, parameter)
    # and the secrets really are left out
    assert "Plaintext" not in DECLARATIONS["Encrypt"].audit_parameters
    assert "CiphertextBlob" not in DECLARATIONS["Decrypt"].audit_parameters


def _refused(declarations, handlers, fragment: str) -> None:
    with pytest.raises(DeclarationError, match=fragment):
        check_declarations(MODEL, declarations, handlers)


def test_a_handler_without_a_declaration_stops_start_up():
    handlers = {**HANDLERS, "FrobnicateKey": HANDLERS["Encrypt"]}
    _refused(DECLARATIONS, handlers, "handler FrobnicateKey has no declaration")


def test_a_declaration_naming_an_unknown_operation_stops_start_up():
    extra = Declaration("FrobnicateKey", (Permission("kms:FrobnicateKey"),), Resolve.KEY, True)
    _refused({**DECLARATIONS, "FrobnicateKey": extra}, HANDLERS, "names no operation")


def test_an_implemented_declaration_without_a_handler_stops_start_up():
    handlers = {k: v for k, v in HANDLERS.items() if k != "Encrypt"}
    _refused(DECLARATIONS, handlers, "Encrypt is declared implemented but has no handler")


def test_an_audit_parameter_that_could_hold_a_secret_stops_start_up():
    leaky = dataclasses.replace(DECLARATIONS["Encrypt"], audit_parameters=("KeyId", "Plaintext"))
    _refused({**DECLARATIONS, "Encrypt": leaky}, HANDLERS, "Plaintext may hold a secret")


def test_dry_run_declared_unlike_the_model_stops_start_up():
    wrong = dataclasses.replace(DECLARATIONS["DescribeKey"], dry_run=True)
    _refused({**DECLARATIONS, "DescribeKey": wrong}, HANDLERS, "DescribeKey: DryRun declared")


def test_the_server_does_not_start_with_a_bad_declaration(tmp_path: Path, monkeypatch):
    from openkms.ops import catalogue
    from openkms.server.config import ServerConfig
    from openkms.server.runtime import StartupError, build_runtime

    handlers = {**HANDLERS, "FrobnicateKey": HANDLERS["Encrypt"]}
    monkeypatch.setattr("openkms.server.runtime.HANDLERS", handlers)
    assert catalogue.DECLARATIONS is DECLARATIONS
    with pytest.raises(StartupError, match="FrobnicateKey"):
        build_runtime(ServerConfig(data_dir=tmp_path, access_key_id="K", secret_access_key="S"))
