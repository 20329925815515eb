def test_index_names_the_service(client):
    body = client.get("/").get_json()
    assert body["success"] is True
    assert body["data"]["links"]["products"] == "/api/products/"


def test_live_server_answers_health(live_server):
    import requests

    assert requests.get(f"{live_server.url}/health", timeout=5).json()["data"]["database"] == "ok"
