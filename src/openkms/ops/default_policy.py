"""The key policy a key gets when CreateKey names none: AWS's default, as AWS prints it."""

from __future__ import annotations

# AWS returns the default policy pretty-printed by Jackson (" : " separators, "[ {").
_DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:%(partition)s:iam::%(account)s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


def default_key_policy(partition: str, account_id: str) -> str:
    return _DEFAULT_POLICY % {"partition": partition, "account": account_id}
