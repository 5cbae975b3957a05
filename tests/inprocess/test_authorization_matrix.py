"""The authorisation matrix: every operation on a key (the key-state table's list, each with a
request that succeeds), asked by an IAM user of the key's account and by another account.

For the user, under the default key policy (which delegates to the account): refused
without an identity policy ("no identity-based policy allows"), done with one that allows,
refused again when it also has an explicit Deny ("… in an identity-based policy"). For
another account: refused while the key policy does not share the key, and, once it does,
done for the operations AWS lets other accounts use and refused for every other.
"""

from __future__ import annotations

import json

import pytest

from openkms.errors import KmsError
from openkms.iam.principal import Principal
from tests.inprocess.conftest import ACCOUNT_ID, OTHER_ACCOUNT_ID, Kms, iam_user, set_state
from tests.inprocess.test_key_state_table import (
    _COLUMN,
    EXPECTED,
    OK,
    OPERATIONS,
    STATES,
    Subject,
)

ALLOW_ALL = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
    }
)
DENY_TOO = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:*", "Resource": "*"},
        ],
    }
)
# AWS: what another account can do with a key its policy shares.
CROSS_ACCOUNT = {
    "DescribeKey",
    "Encrypt",
    "Decrypt",
    "ReEncrypt (source)",
    "ReEncrypt (destination)",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GetKeyRotationStatus",
    "GetPublicKey",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
    "CreateGrant",
    "ListGrants",
    "RetireGrant",
    "RevokeGrant",
}
# Operations whose request names the key by id (so another account cannot even find it) or
# that also need a resource of the caller's own (an alias, a second key of its own):
# they are tested for the user only.
NOT_BY_ARN = {
    "CreateAlias (target)",
    "UpdateAlias (new target)",
    "UpdateAlias (old target)",
    "DeleteAlias",
    "ListAliases (KeyId filter)",
    "ReEncrypt (source)",
    "ReEncrypt (destination)",
    "Decrypt",
}


def _subject(root: Kms, operation: str) -> Subject:
    """The key-state table's subject, in the first state where the operation succeeds
    (Enabled, but for CancelKeyDeletion)."""
    op = OPERATIONS[operation]
    state = next(s for s in STATES if EXPECTED[operation][_COLUMN[s]] == OK)
    key = root.create_key(**op.key)
    subject = Subject(root, key["KeyId"], key["Arn"], state)
    op.prepare(subject)
    if state != "Enabled":
        set_state(root.runtime, subject.key_id, state)
    return subject


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_user_is_decided_by_its_identity_policy(module_kms: Kms, operation: str) -> None:
    op = OPERATIONS[operation]
    for policy, expected in (
        (None, "no identity-based policy allows"),
        (DENY_TOO, "with an explicit deny in an identity-based policy"),
    ):
        subject = _subject(module_kms, operation)
        subject.kms = iam_user(module_kms, policy)
        with pytest.raises(KmsError) as caught:
            op.act(subject)
        assert caught.value.code == "AccessDeniedException", caught.value.message
        assert caught.value.message is not None and expected in caught.value.message
        assert caught.value.message.startswith(f"User: {subject.kms.principal.arn} ")
        subject.kms = module_kms
        op.untouched(subject)
    subject = _subject(module_kms, operation)
    subject.kms = iam_user(module_kms, ALLOW_ALL)
    op.done(subject, op.act(subject))


@pytest.mark.parametrize("operation", sorted(set(OPERATIONS) - NOT_BY_ARN))
def test_another_account_is_decided_by_the_key_policy_and_aws_cross_account_list(
    module_kms: Kms, operation: str
) -> None:
    op = OPERATIONS[operation]
    other = Kms(
        module_kms.runtime,
        Principal(
            OTHER_ACCOUNT_ID, f"arn:aws:iam::{OTHER_ACCOUNT_ID}:root", OTHER_ACCOUNT_ID, "OTHERKEY"
        ),
    )
    subject = _subject(module_kms, operation)
    by_arn = Subject(other, subject.arn, subject.arn, subject.state, subject.extra)
    with pytest.raises(KmsError) as caught:
        op.act(by_arn)
    assert caught.value.code == "AccessDeniedException"
    assert "because no resource-based policy allows" in (caught.value.message or "")
    shared = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": OTHER_ACCOUNT_ID},
                    "Action": "kms:*",
                    "Resource": "*",
                },
            ],
        }
    )
    module_kms.call("PutKeyPolicy", KeyId=subject.key_id, Policy=shared)
    if operation in CROSS_ACCOUNT:
        op.done(subject, op.act(by_arn))
        return
    with pytest.raises(KmsError) as caught:
        op.act(by_arn)
    assert caught.value.code == "AccessDeniedException", operation
    op.untouched(subject)
