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


def test_other_paths_and_methods_get_aws_shaped_answers(server):
    for method, path in (("GET", "/nope"), ("POST", "/a/b"), ("PUT", "/"), ("DELETE", "/healthz")):
        response = requests.request(method, f"{server.endpoint}{path}", timeout=5)
        assert response.status_code in (404, 405)
        assert response.json() == {"__type": "UnknownOperationException"}
        assert response.headers["x-amzn-RequestId"]
