"""Parsing the list of PKCS#11 tokens that stand in for CloudHSM clusters."""

from __future__ import annotations

import pytest

from openkms.keystore.clusters import (
    ClusterConfigError,
    TokenLocation,
    clusters_from_environment,
    parse_clusters,
)


def test_entries_parse_and_the_label_follows_the_last_colon():
    parsed = parse_clusters(
        " cluster-abcdefghijk=/usr/lib/softhsm/libsofthsm2.so:tok-a ,"
        "cluster-bcdefghijkl=C:/odd:path/lib.so:tok-b,"
    )
    assert parsed == {
        "cluster-abcdefghijk": TokenLocation("/usr/lib/softhsm/libsofthsm2.so", "tok-a"),
        "cluster-bcdefghijkl": TokenLocation("C:/odd:path/lib.so", "tok-b"),
    }


def test_nothing_configured_is_no_clusters():
    assert parse_clusters("") == {}
    assert clusters_from_environment({}) == {}


@pytest.mark.parametrize(
    "text",
    [
        "cluster-abcdefghijk",
        "cluster-abcdefghijk=/lib.so",
        "cluster-abcdefghijk=/lib.so:",
        "cluster-abcdefghijk=:label",
        "not-a-cluster=/lib.so:label",
        "cluster-abc=/lib.so:label",
        "cluster-abcdefghijk=/a.so:x,cluster-abcdefghijk=/b.so:y",
    ],
)
def test_bad_entries_are_refused(text):
    with pytest.raises(ClusterConfigError):
        parse_clusters(text)
