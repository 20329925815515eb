from dataclasses import dataclass


def test_index_names_the_service(client):
    body = client.get("/").get_json()
    assert body["success"] is True
    assert body["data"]["links"]["products"] == "/api/products/"


def test_live_server_answers_health(live_server):
    import requests

    assert requests.get(f"{live_server.url}/health", timeout=5).json()["data"]["database"] == "ok"


def test_a_hook_that_is_a_callable_object_still_runs(app, client):
    """Flask accepts any callable as a hook; the app's remembered answers to 'is it a
    coroutine?' cover plain functions and must not turn away the rest."""

    @dataclass  # compared by value, so unhashable
    class Stamp:
        value: str

        def __call__(self, response):
            response.headers["X-Stamp"] = self.value
            return response

    app.after_request(Stamp("stamped"))
    assert client.get("/health/live").headers["X-Stamp"] == "stamped"
