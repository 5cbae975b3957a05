import requests


def test_healthz_answers_200_once_serving(server):
    response = requests.get(f"{server.endpoint}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_sts_get_caller_identity_names_the_account_root(server):
    identity = server.client("sts").get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert identity["Arn"] == "arn:aws:iam::123456789012:root"
    assert identity["UserId"] == "123456789012"
