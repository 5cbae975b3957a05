"""AWS managed keys: the services that have one, what each key looks like, and what its key
policy lets the owning account do.

An AWS managed key exists in an account and region from the first use of its predefined alias
(``alias/aws/<service>``); until then ListAliases shows the alias without a target. The table
below is AWS's list of such services (39, as a real us-east-1 account shows them; AWS has
made none for new services since 2021). Descriptions are AWS's where one has been seen in a
real DescribeKey answer (marked "seen"); the others follow the same wording. Policies follow
the shape AWS gives them: statement 1 lets every principal of the account use the key through
the service (``kms:CallerAccount`` and ``kms:ViaService`` conditions), statement 2 gives the
account direct access to the key's metadata only, and some services add a statement letting
the service principal describe the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

KEY_MANAGER_AWS = "AWS"
ALIAS_PREFIX = "alias/aws/"
# AWS managed keys rotate every year (since May 2022), and the customer cannot change it.
ROTATION_PERIOD_DAYS = 365

_USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")
_USE_GRANT = (*_USE, "kms:CreateGrant", "kms:DescribeKey")
_USE_GRANTS = (*_USE, "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey")
_USE_ONLY = (*_USE, "kms:DescribeKey")
_METADATA = ("kms:Describe*", "kms:Get*", "kms:List*")

# What the account's principals may do with an AWS managed key, from the policy's two
# statements: use through the service (openkms cannot tell a call made through S3 from a
# direct one, so it admits the use statement's cryptographic actions to the owning account
# whatever the caller) and metadata. Everything else (enable, disable, delete, rotate, tag,
# describe-edit, alias, policy) no statement allows: AccessDeniedException. Grant actions
# are left to the grants issue, which can read them from the stored policy.
_CUSTOMER_ACTIONS = (*_USE, "kms:DescribeKey", *_METADATA)


@dataclass(frozen=True, slots=True)
class ManagedService:
    name: str  # the alias is alias/aws/<name>
    description: str
    policy_id: str  # the policy's "Id"
    # How the use statement's Sid names the service: "Allow access through <label> for all
    # principals in the account that are authorized to use <label>".
    label: str
    actions: tuple[str, ...] = _USE_GRANT
    # kms:ViaService values, "{region}" filled in; a "*" makes the condition StringLike.
    via: tuple[str, ...] = ()
    revoke_grant: bool = True
    # Sid of the statement letting the service principal describe the key, if it has one.
    service_describe: str | None = None
    sid: str | None = None  # the use statement's Sid when it does not follow the pattern

    @property
    def alias_name(self) -> str:
        return ALIAS_PREFIX + self.name

    def via_services(self, region: str) -> list[str]:
        hosts = self.via or (f"{self.name}.{{region}}.amazonaws.com",)
        return [host.format(region=region) for host in hosts]


def _default(thing: str, master: bool = False) -> str:
    kind = "master key" if master else "key"
    return f"Default {kind} that protects my {thing} when no other key is defined"


def _describe(label: str) -> str:
    return f"Allow {label} to describe the key directly"


SERVICES: tuple[ManagedService, ...] = (
    # ACM's, AppFlow's, Connect's and SES's real policies carry bespoke statements (grant
    # operation conditions, a Deny); openkms stores them in the common shape.
    ManagedService("acm", _default("ACM private keys"), "auto-acm-4", "ACM"),  # seen
    ManagedService(
        "appflow",
        _default("AppFlow data"),
        "auto-appflow-2",
        "Amazon AppFlow",
        service_describe=(
            "Allow AppFlow Service with service principal name appflow.amazonaws.com to "
            "describe the key directly"
        ),
    ),
    ManagedService(
        "backup",
        _default("Backup data"),  # seen
        "auto-backup-1",
        "Backup",
        actions=("kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey*"),
        sid=(
            "Allow access through Backup for all principals in the account that are "
            "authorized to use Backup Storage"
        ),
    ),
    ManagedService(
        "cloud9",
        _default("Cloud9 environments"),
        "auto-cloud9-1",
        "Cloud9",
        _USE_ONLY,
        revoke_grant=False,
    ),
    ManagedService(
        "codeartifact",
        _default("CodeArtifact repositories"),
        "auto-codeartifact-1",
        "Amazon CodeArtifact",
        service_describe=(
            "Allow CodeArtifact Service with service principal name codeartifact.amazonaws.com "
            "to describe the key directly"
        ),
    ),
    ManagedService(
        "codecommit",
        _default("CodeCommit repositories"),
        "auto-codecommit-2",
        "CodeCommit",
        _USE_ONLY,
        revoke_grant=False,
    ),
    ManagedService(
        "connect",
        _default("Connect data"),
        "auto-connect-3",
        "Connect",
        actions=("kms:CreateGrant", "kms:Describe*", "kms:Get*", "kms:List*"),
        service_describe="Allow Connect to directly describe the key",
    ),
    ManagedService("dax", _default("DAX clusters"), "auto-dax-1", "DAX", _USE_GRANTS),
    ManagedService("dms", _default("DMS resources"), "auto-dms-1", "DMS", _USE_GRANTS),
    ManagedService(
        "dynamodb",
        _default("DynamoDB data"),  # seen
        "auto-dynamodb-3",
        "Amazon DynamoDB",
        via=("dynamodb.*.amazonaws.com",),
        service_describe="Allow DynamoDB to directly describe the key",
    ),
    ManagedService(
        "ebs",
        _default("EBS volumes", master=True),  # seen
        "auto-ebs-2",
        "EBS",
        via=("ec2.{region}.amazonaws.com",),
    ),
    ManagedService(
        "ecr",
        _default("ECR repositories"),
        "auto-ecr-1",
        "Amazon ECR",
        (*_USE_GRANT, "kms:RetireGrant"),
    ),
    ManagedService(
        "eks",
        _default("EKS clusters"),
        "auto-eks-1",
        "Amazon EKS",
        service_describe="Allow the EKS Service to describe the key directly",
    ),
    ManagedService(
        "elasticache",
        _default("ElastiCache clusters"),
        "auto-elasticache-1",
        "ElastiCache Service",
        _USE_GRANTS,
        service_describe="Allow ElastiCache service principals to describe the key directly",
    ),
    ManagedService(
        "elasticfilesystem",
        _default("EFS filesystems"),  # seen
        "auto-elasticfilesystem-1",
        "EFS",
        sid="Allow access to EFS for all principals in the account that are authorized to use EFS",
    ),
    ManagedService(
        "es",
        _default("OpenSearch Service domains"),
        "auto-es-2",
        "OpenSearch Service",
        service_describe="Allow OpenSearch service principals to describe the key directly",
    ),
    ManagedService("fsx", _default("FSx file systems"), "auto-fsx-1", "FSx", _USE_GRANTS),
    ManagedService("glue", _default("Glue data", master=True), "auto-glue-1", "Glue"),  # seen
    ManagedService(
        "imagebuilder",
        _default("Image Builder images"),
        "auto-imagebuilder-1",
        "Amazon EC2 Image Builder",
        service_describe="Allow the EC2 Image Builder Service to describe the key directly",
    ),
    ManagedService("kafka", _default("MSK clusters"), "auto-kafka-1", "Kafka", _USE_GRANTS),
    ManagedService(
        "kendra",
        _default("Kendra indexes"),
        "auto-kendra-1",
        "Amazon Kendra",
        service_describe="Allow Kendra Service to describe the key directly",
    ),
    ManagedService(
        "kinesis",
        _default("Kinesis data streams"),
        "auto-kinesis-1",
        "Amazon Kinesis",
        _USE_ONLY,
        revoke_grant=False,
    ),
    ManagedService(
        "kinesisvideo",
        _default("Kinesis Video Streams data"),
        "auto-kinesisvideo-1",
        "Kinesis Video Streams",
    ),
    ManagedService("lambda", _default("Lambda functions"), "auto-awslambda", "AWS Lambda"),  # seen
    ManagedService("lex", _default("Lex bots"), "auto-lex-1", "lex"),
    ManagedService(
        "lightsail",
        _default("Lightsail resources"),
        "auto-lightsail-1",
        "Lightsail",
        _USE_ONLY,
        revoke_grant=False,
        service_describe=(
            "Allow Lightsail with service principal name lightsail.amazonaws.com to describe "
            "the key directly"
        ),
    ),
    ManagedService(
        "mq",
        _default("MQ brokers"),
        "auto-mq-1",
        "Amazon MQ",
        via=("mq.{region}.amazonaws.com", "elasticfilesystem.{region}.amazonaws.com"),
        sid=(
            "Allow access to Amazon MQ for all principals in the account that are authorized "
            "to use Amazon MQ"
        ),
    ),
    ManagedService(
        "rds",
        _default("RDS database volumes"),
        "auto-rds-2",
        "RDS",
        _USE_GRANTS,  # seen
    ),
    ManagedService("redshift", _default("Redshift clusters"), "auto-redshift-3", "RedShift"),
    ManagedService(
        "s3",
        _default("S3 objects"),
        "auto-s3-2",
        "S3",
        _USE_ONLY,  # seen
        revoke_grant=False,
    ),
    ManagedService(
        "secretsmanager",
        _default("Secrets Manager data"),  # seen
        "auto-secretsmanager-2",
        "AWS Secrets Manager",
    ),
    ManagedService("ses", _default("SES messages"), "auto-ses-2", "SES"),
    ManagedService(
        "sns",
        _default("SNS data"),
        "auto-sns-2",
        "SNS",
        (
            "kms:Decrypt",
            "kms:GenerateDataKey*",
            "kms:CreateGrant",
            "kms:ListGrants",
            "kms:DescribeKey",
        ),
    ),
    ManagedService(
        "sqs",
        _default("SQS messages"),
        "auto-sqs-1",
        "Simple Queue Service (SQS)",
        sid=(
            "Allow access through Simple Queue Service (SQS) for all principals in the account "
            "that are authorized to use SQS"
        ),
    ),
    ManagedService(
        "ssm",
        _default("SSM parameters"),
        "auto-ssm-1",
        "SSM",
        _USE_ONLY,  # seen
        revoke_grant=False,
    ),
    ManagedService(
        "timestream",
        _default("Timestream data"),
        "auto-timestream-1",
        "Amazon Timestream",
        service_describe="Allow the Timestream Service to describe the key directly",
    ),
    ManagedService(
        "translate",
        _default("Translate data"),
        "auto-translate-1",
        "Amazon Translate",
        service_describe=(
            "Allow Translate Service with service principal name translate.amazonaws.com to "
            "describe the key directly"
        ),
    ),
    ManagedService(
        "workspaces",
        _default("WorkSpaces volumes"),
        "auto-workspaces-1",
        "Workspaces",
        _USE_GRANTS,
    ),
    ManagedService(
        "xray",
        _default("X-Ray data"),
        "auto-xray-1",
        "X-Ray",
        service_describe=(
            "Allow X-Ray Service with service principal name xray.amazonaws.com to describe "
            "the key directly"
        ),
    ),
)

_BY_ALIAS = {service.alias_name: service for service in SERVICES}
# Sorted by code point, as ListAliases sorts every alias name.
PREDEFINED_ALIASES: tuple[str, ...] = tuple(sorted(_BY_ALIAS))


def managed_service(alias_name: str) -> ManagedService | None:
    """The service whose AWS managed key ``alias_name`` names, if it is one."""
    return _BY_ALIAS.get(alias_name)


@lru_cache(maxsize=256)
def customer_may(action: str) -> bool:
    """Whether the owning account's principals may perform ``action`` on an AWS managed key."""
    return any(fnmatchcase(action.lower(), allowed.lower()) for allowed in _CUSTOMER_ACTIONS)


def managed_key_policy(
    service: ManagedService, partition: str, account_id: str, region: str
) -> str:
    """The key policy of ``service``'s AWS managed key in this account and region, printed as
    AWS prints key policies."""
    via = service.via_services(region)
    like = any("*" in host for host in via)
    condition: dict[str, Any] = {"StringEquals": {"kms:CallerAccount": account_id}}
    via_value: str | list[str] = via[0] if len(via) == 1 else via
    if like:
        condition["StringLike"] = {"kms:ViaService": via_value}
    else:
        condition["StringEquals"]["kms:ViaService"] = via_value
    sid = service.sid or (
        f"Allow access through {service.label} for all principals in the account that are "
        f"authorized to use {service.label}"
    )
    statements: list[dict[str, Any]] = [
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": list(service.actions),
            "Resource": "*",
            "Condition": condition,
        },
        {
            "Sid": "Allow direct access to key metadata to the account",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": [*_METADATA, *(("kms:RevokeGrant",) if service.revoke_grant else ())],
            "Resource": "*",
        },
    ]
    if service.service_describe is not None:
        statements.append(
            {
                "Sid": service.service_describe,
                "Effect": "Allow",
                "Principal": {"Service": f"{service.name}.amazonaws.com"},
                "Action": list(_METADATA),
                "Resource": "*",
            }
        )
    return pretty_policy(
        {"Version": "2012-10-17", "Id": service.policy_id, "Statement": statements}
    )


def pretty_policy(value: Any, indent: int = 0) -> str:
    """JSON as AWS prints key policies (Jackson's pretty printer: " : " between a name and
    its value, scalar lists on one line, lists of objects as "[ {" … "}, {" … "} ]")."""
    if isinstance(value, dict):
        inner = " " * (indent + 2)
        members = ",\n".join(
            f"{inner}{json.dumps(name)} : {pretty_policy(item, indent + 2)}"
            for name, item in value.items()
        )
        return "{\n" + members + "\n" + " " * indent + "}"
    if isinstance(value, list):
        return "[ " + ", ".join(pretty_policy(item, indent) for item in value) + " ]"
    return json.dumps(value)
