"""Screenshots of the web console's main pages into docs/console/ (PNG), for the README.

Starts a real openkms server in a temporary directory, makes a few keys with boto3, and
photographs the pages in headless Chromium (Debian's ``chromium``; Playwright drives it):

    .venv/bin/python scripts/console_screenshots.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.console_browser import chromium, sign_in  # noqa: E402
from tests.support import ACCOUNT_ID, OpenKmsServer  # noqa: E402

OUT = ROOT / "docs" / "console"


def populate(server: OpenKmsServer) -> str:
    """A handful of keys as a real account has them; the id of the one to show in detail."""
    kms = server.client()
    worker = server.create_user(ACCOUNT_ID, "payments-worker")["Arn"]
    main = kms.create_key(Description="Payments: envelope encryption of card data")
    key_id = main["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/payments", TargetKeyId=key_id)
    kms.create_alias(AliasName="alias/payments-eu", TargetKeyId=key_id)
    kms.tag_resource(
        KeyId=key_id,
        Tags=[{"TagKey": "team", "TagValue": "payments"}, {"TagKey": "env", "TagValue": "prod"}],
    )
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    kms.rotate_key_on_demand(KeyId=key_id)
    kms.create_grant(
        KeyId=key_id,
        GranteePrincipal=worker,
        Operations=["Encrypt", "Decrypt", "GenerateDataKey"],
        Name="payments-worker",
    )
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].append(
        {
            "Sid": "AllowPaymentsWorker",
            "Effect": "Allow",
            "Principal": {"AWS": worker},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        }
    )
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    signing = kms.create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="Release signing"
    )
    kms.create_alias(AliasName="alias/release-signing", TargetKeyId=signing["KeyMetadata"]["KeyId"])
    kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Description="Webhooks")
    old = kms.create_key(Description="Legacy backups (retiring)")["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=old)
    gone = kms.create_key(Description="Test key, to be deleted")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=gone, PendingWindowInDays=7)
    return key_id


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        server = OpenKmsServer(Path(directory) / "data").start()
        try:
            key_id = populate(server)
            user = server.create_user(ACCOUNT_ID, "auditor")
            with chromium() as browser:
                context = browser.new_context(viewport={"width": 1280, "height": 860})
                page = context.new_page()
                page.goto(f"{server.endpoint}/console")
                page.screenshot(path=OUT / "sign-in.png")
                sign_in(page, server)
                page.screenshot(path=OUT / "keys.png", full_page=True)
                page.goto(f"{server.endpoint}/console/keys/{key_id}")
                page.screenshot(path=OUT / "key.png", full_page=True)
                page.goto(f"{server.endpoint}/console/keys/new")
                page.screenshot(path=OUT / "create-key.png")
                context.close()
                context = browser.new_context(viewport={"width": 1280, "height": 600})
                page = context.new_page()
                sign_in(page, server, user["AccessKeyId"], user["SecretAccessKey"])
                page.screenshot(path=OUT / "access-denied.png")
                context.close()
        finally:
            server.stop()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
