"""Which PKCS#11 tokens stand in for CloudHSM clusters on this server.

``OPENKMS_CLOUDHSM_CLUSTERS`` lists them, comma-separated, each as
``cluster-xxxxxxxxxxx=LIBRARY_PATH:TOKEN_LABEL`` (the label follows the last colon, so a
library path may hold colons). A CreateCustomKeyStore's CloudHsmClusterId must name one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

ENVIRONMENT_VARIABLE = "OPENKMS_CLOUDHSM_CLUSTERS"
_CLUSTER_ID = re.compile(r"^cluster-[2-7a-zA-Z]{11,16}$")


class ClusterConfigError(ValueError):
    """The cluster list does not parse; the message names the bad entry."""


@dataclass(frozen=True, slots=True)
class TokenLocation:
    library: str
    token_label: str


def parse_clusters(text: str) -> dict[str, TokenLocation]:
    clusters: dict[str, TokenLocation] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        cluster_id, equals, location = entry.partition("=")
        library, colon, label = location.rpartition(":")
        if not equals or not colon or not library or not label:
            raise ClusterConfigError(
                f"{entry!r} is not cluster-xxxxxxxxxxx=LIBRARY_PATH:TOKEN_LABEL"
            )
        if not _CLUSTER_ID.match(cluster_id):
            raise ClusterConfigError(f"{cluster_id!r} is not a CloudHSM cluster id")
        if cluster_id in clusters:
            raise ClusterConfigError(f"{cluster_id} is configured twice")
        clusters[cluster_id] = TokenLocation(library, label)
    return clusters


def clusters_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, TokenLocation]:
    return parse_clusters(
        (environ if environ is not None else os.environ).get(ENVIRONMENT_VARIABLE, "")
    )
