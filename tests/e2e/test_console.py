"""The web console at /console in a real headless Chromium against a real server: sign-in,
keys made and changed through its forms (checked with boto3), what it shows, and what it
refuses (a wrong secret, a caller without permission, a missing or forged CSRF token, an
expired or signed-out session)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.console_browser import chromium, csrf_token, sign_in
from tests.e2e.kms_management import new_key
from tests.support import ACCOUNT_ID, OpenKmsServer, eventually, time_travel

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"
SIGN_IN_FAILED = "Sign-in failed: the access key ID or the secret access key is wrong."


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def console_cookie(page: Any) -> dict[str, Any]:
    cookies = [c for c in page.context.cookies() if c["name"] == "openkms_console"]
    assert len(cookies) == 1, cookies
    return cookies[0]


def test_sign_in_create_a_key_edit_its_policy_and_see_the_audit_event(server, kms, page):
    sign_in(page, server)
    assert page.url.endswith("/console/keys")
    assert ROOT in page.inner_text("#signed-in-as")

    alias = f"alias/console-{uuid.uuid4().hex[:8]}"
    page.click("text=Create key")
    page.fill("#Description", "made in the <console> & kept")
    page.fill("#AliasName", alias)
    page.click("#create")
    assert page.inner_text("[role=status]") == "Key created."
    key_id = page.inner_text("#key-id")
    metadata = kms.describe_key(KeyId=alias)["KeyMetadata"]
    assert metadata["KeyId"] == key_id
    assert metadata["Description"] == "made in the <console> & kept"  # escaped, not mangled
    assert page.inner_text("#key-description") == "made in the <console> & kept"
    assert page.locator("console").count() == 0  # text, never markup
    assert page.inner_text("#key-state") == "Enabled"
    assert alias in page.inner_text("#aliases")

    # The key list shows it with its alias, state, spec and usage.
    page.goto(f"{server.endpoint}/console/keys")
    row = page.locator(f"tr[data-key-id='{key_id}']")
    assert alias in row.inner_text()
    assert "Enabled" in row.inner_text() and "SYMMETRIC_DEFAULT" in row.inner_text()

    page.click(f"text={key_id}")
    policy = json.loads(page.input_value("#Policy"))
    policy["Statement"].append(
        {
            "Sid": "ConsoleEdit",
            "Effect": "Allow",
            "Principal": {"AWS": ROOT},
            "Action": "kms:DescribeKey",
            "Resource": "*",
        }
    )
    page.fill("#Policy", json.dumps(policy, indent=2))
    page.click("#save-policy")
    assert page.inner_text("[role=status]") == "Key policy saved."
    stored = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert stored == policy
    assert "ConsoleEdit" in page.input_value("#Policy")

    # The edit's audit event, on the key's own page: who did it, from where.
    event = page.locator("tr.event[data-event-name='PutKeyPolicy']")
    assert event.count() == 1
    assert ROOT in event.inner_text() and "127.0.0.1" in event.inner_text()
    # The page's own reads are audited too, listed on asking.
    assert page.locator("tr.event[data-event-name='GetKeyPolicy']").count() == 0
    page.click("text=Show reads too")
    assert page.locator("tr.event[data-event-name='GetKeyPolicy']").count() >= 1


def test_key_actions_change_the_key_as_the_api_sees_it(server, kms, page):
    key_id = new_key(kms)["KeyId"]
    sign_in(page, server)
    page.goto(f"{server.endpoint}/console/keys/{key_id}")
    page.click("#action-disable")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    page.click("#action-enable")
    page.fill("#add-tag input[name=TagKey]", "team")
    page.fill("#add-tag input[name=TagValue]", "<payments>")
    page.click("#add-tag button")
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [
        {"TagKey": "team", "TagValue": "<payments>"}
    ]
    assert "<payments>" in page.inner_text("#tags")
    page.click("#action-rotate")
    assert page.inner_text("[role=status]") == "On-demand rotation done."
    assert len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    page.fill("#PendingWindowInDays", "7")
    page.click("#action-schedule-deletion")
    described = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion"
    assert page.inner_text("#deletion-date") != "-"
    page.click("#action-cancel-deletion")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    # A value the API refuses is refused here with the API's own error, and changes nothing.
    page.fill("#PendingWindowInDays", "3")
    page.click("#action-schedule-deletion")
    assert "ValidationException" in page.inner_text("#error-message")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_a_wrong_secret_gets_a_clear_message_and_no_session(server, page):
    sign_in(page, server, secret_access_key="not-the-secret")
    assert page.inner_text("#sign-in-error") == SIGN_IN_FAILED
    sign_in(page, server, access_key_id="AKIANOSUCHKEY0000000")
    assert page.inner_text("#sign-in-error") == SIGN_IN_FAILED
    assert [c for c in page.context.cookies() if c["name"] == "openkms_console"] == []
    page.goto(f"{server.endpoint}/console/keys")
    assert "/console/sign-in" in page.url


def test_rapid_sign_in_attempts_are_throttled(server, page):
    form = {"AccessKeyId": "FOOBARKEY", "SecretAccessKey": "guess", "Region": "us-east-1"}
    statuses = [
        page.request.post(f"{server.endpoint}/console/sign-in", form=form).status for _ in range(12)
    ]
    assert statuses[0] == 401 and 429 in statuses
    time.sleep(1.5)  # the bucket refills: the next test's sign-in is not refused


def test_a_user_without_permission_sees_access_denied_and_changes_nothing(server, kms, page):
    user = server.create_user(ACCOUNT_ID, f"console-{uuid.uuid4().hex[:8]}")
    key_id = new_key(kms)["KeyId"]
    keys_before = kms.list_keys(Limit=1000)["Keys"]
    sign_in(page, server, user["AccessKeyId"], user["SecretAccessKey"])
    assert user["Arn"] in page.inner_text("#signed-in-as")
    assert page.inner_text("#error-title") == "Access denied"
    assert "kms:ListKeys" in page.inner_text("#error-message")

    page.goto(f"{server.endpoint}/console/keys/{key_id}")
    assert page.inner_text("#error-title") == "Access denied"

    page.goto(f"{server.endpoint}/console/keys/new")
    page.fill("#Description", "must not exist")
    page.click("#create")
    assert page.inner_text("#error-title") == "Access denied"
    assert "kms:CreateKey" in page.inner_text("#error-message")

    # A well-formed form for a key it may not touch (valid session, valid CSRF token).
    answer = page.request.post(
        f"{server.endpoint}/console/keys/{key_id}/disable", form={"csrf": csrf_token(page)}
    )
    assert answer.status == 400 and "Access denied" in answer.text()
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.list_keys(Limit=1000)["Keys"] == keys_before
    # Each refusal is in the trail as the API's would be: the user, the browser, the error.
    found = server.client("cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user["UserName"]}]
    )["Events"]
    records = [json.loads(event["CloudTrailEvent"]) for event in found]
    refused = {r["eventName"] for r in records if r.get("errorCode") == "AccessDeniedException"}
    assert {"ListKeys", "DescribeKey", "CreateKey", "DisableKey"} <= refused
    assert all(r["userIdentity"]["arn"] == user["Arn"] for r in records)
    assert all("Chrome" in r["userAgent"] for r in records)  # the browser's own


def test_a_reader_sees_what_it_may_read_and_is_told_what_it_may_not(server, kms, page):
    user = server.create_user(ACCOUNT_ID, f"reader-{uuid.uuid4().hex[:8]}")
    reads = ["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:ListResourceTags"]
    server.put_user_policy(
        user,
        "read",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": reads, "Resource": "*"}],
            }
        ),
    )
    key_id = new_key(kms, Description="readable")["KeyId"]
    sign_in(page, server, user["AccessKeyId"], user["SecretAccessKey"])
    assert page.locator(f"tr[data-key-id='{key_id}']").count() == 1
    page.goto(f"{server.endpoint}/console/keys/{key_id}")
    assert page.inner_text("#key-description") == "readable"
    assert "No tags." in page.inner_text("#tags")
    assert "AccessDeniedException" in page.inner_text("#policy")
    assert page.locator("#edit-policy").count() == 0
    assert "AccessDeniedException" in page.inner_text("#grants")
    assert "cloudtrail:LookupEvents" in page.inner_text("#events")


def test_a_missing_or_forged_csrf_token_is_refused_and_changes_nothing(server, kms, page, browser):
    key_id = new_key(kms)["KeyId"]
    sign_in(page, server)
    target = f"{server.endpoint}/console/keys/{key_id}/disable"
    for form in ({}, {"csrf": "forged"}, {"csrf": csrf_token(page) + "x"}):
        answer = page.request.post(target, form=form)
        assert answer.status == 403, form
        assert "security token is missing or does not match" in answer.text()
    # Another signed-in session's token is not this one's.
    other = browser.new_context()
    try:
        other_page = other.new_page()
        sign_in(other_page, server)
        answer = page.request.post(target, form={"csrf": csrf_token(other_page)})
        assert answer.status == 403
    finally:
        other.close()
    # A form on another site, posted by the browser: SameSite=Strict keeps the cookie home.
    attack = (
        f'<form method="post" action="{target}"><input name="csrf" value="x">'
        '<button id="go">go</button></form>'
    )
    page.route(
        "http://attacker.example/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=attack),
    )
    page.goto("http://attacker.example/")
    page.click("#go")
    page.wait_for_load_state()
    assert "sent from another site" in page.inner_text("#error-message")
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_another_sites_page_cannot_sign_a_browser_in(server, page):
    login = (
        f'<form method="post" action="{server.endpoint}/console/sign-in">'
        '<input name="AccessKeyId" value="FOOBARKEY">'
        '<input name="SecretAccessKey" value="FOOBARSECRET">'
        '<button id="go">go</button></form>'
    )
    page.route(
        "http://attacker.example/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=login),
    )
    page.goto("http://attacker.example/")
    page.click("#go")
    page.wait_for_load_state()
    assert "sent from another site" in page.inner_text("#error-message")
    assert [c for c in page.context.cookies() if c["name"] == "openkms_console"] == []


def test_an_expired_session_must_sign_in_again(server, kms, page):
    key_id = new_key(kms)["KeyId"]
    sign_in(page, server)
    page.goto(f"{server.endpoint}/console/keys/{key_id}")
    token, cookie = csrf_token(page), console_cookie(page)
    with time_travel(901, server):  # the default lifetime is 900 s of the server's clock
        page.goto(f"{server.endpoint}/console/keys")
        assert "/console/sign-in" in page.url
        assert "Your session has ended" in page.inner_text("main")
        # The expired cookie with its valid CSRF token, sent again: nothing is done.
        page.context.add_cookies([cookie])
        answer = page.request.post(
            f"{server.endpoint}/console/keys/{key_id}/disable", form={"csrf": token}
        )
        assert "/console/sign-in?session=expired" in answer.url
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
        sign_in(page, server)
        assert page.url.endswith("/console/keys")


def test_sign_out_ends_the_session_even_for_a_copied_cookie(server, page):
    sign_in(page, server)
    copied = console_cookie(page)
    page.click("#sign-out")
    assert "You are signed out." in page.inner_text("main")
    page.context.add_cookies([copied])
    page.goto(f"{server.endpoint}/console/keys")
    assert "/console/sign-in" in page.url


def test_a_deactivated_access_key_ends_its_console_session(server, page):
    user = server.create_user(ACCOUNT_ID, f"console-{uuid.uuid4().hex[:8]}")
    sign_in(page, server, user["AccessKeyId"], user["SecretAccessKey"])
    assert user["Arn"] in page.inner_text("#signed-in-as")
    server.admin(
        "update-access-key", "--account-id", ACCOUNT_ID,
        "--access-key-id", user["AccessKeyId"], "--status", "Inactive",
    )  # fmt: skip

    def signed_out() -> None:
        page.goto(f"{server.endpoint}/console/keys")
        assert "/console/sign-in" in page.url

    eventually(signed_out)
    sign_in(page, server, user["AccessKeyId"], user["SecretAccessKey"])
    assert page.inner_text("#sign-in-error") == SIGN_IN_FAILED


def test_the_session_cookie_is_httponly_strict_and_short_lived(server, page):
    sign_in(page, server)
    cookie = console_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP on loopback: Secure would drop it
    assert cookie["path"] == "/console"
    assert "openkms_console" not in page.evaluate("document.cookie")
    answer = page.request.get(f"{server.endpoint}/console/keys")
    headers = answer.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    # No secret in what the browser holds: the cookie is sealed, the page has no secret.
    assert "FOOBARSECRET" not in cookie["value"] and "FOOBARSECRET" not in page.content()


def test_over_tls_the_cookie_is_also_secure(tmp_path: Path, browser):
    from tests.e2e.test_serving import _certificate_authority

    _ca, cert, key = _certificate_authority(tmp_path)
    server = OpenKmsServer(
        tmp_path / "data", extra_args=["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    )
    server.scheme = "https"
    server.health_verify = str(_ca)
    server.start()
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sign_in(page, server)
        assert page.url.endswith("/console/keys")
        cookie = console_cookie(page)
        assert cookie["secure"] is True and cookie["httpOnly"] is True
    finally:
        context.close()
        server.stop()
