from dataclasses import dataclass
from unittest.mock import patch

from flask import Flask


def test_index_names_the_service(client):
    body = client.get("/").get_json()
    assert body["success"] is True
    assert body["data"]["links"]["products"] == "/api/products/"


def test_live_server_answers_health(live_server):
    import requests

    assert requests.get(f"{live_server.url}/health", timeout=5).json()["data"]["database"] == "ok"


def test_a_hook_that_is_a_callable_object_still_runs(app, client):
    """Flask accepts any callable as a hook; the app's quick answer to 'is it a
    coroutine?' covers functions and methods and must not turn away the rest."""

    @dataclass  # compared by value, so unhashable
    class Stamp:
        value: str

        def __call__(self, response):
            response.headers["X-Stamp"] = self.value
            return response

    app.after_request(Stamp("stamped"))
    assert client.get("/health/live").headers["X-Stamp"] == "stamped"


def test_coroutines_go_through_flasks_own_check_and_plain_callables_run_as_they_are(app):
    class Hooks:
        def plain(self, response):
            return response

        async def coroutine(self, response):
            return response

    async def coroutine_function(response):
        return response

    def plain_function(response):
        return response

    def marked_as_coroutine(response):  # inspect.markcoroutinefunction (Python 3.12+) sets this
        return response

    marked_as_coroutine._is_coroutine_marker = object()
    hooks = Hooks()
    assert app.ensure_sync(plain_function) is plain_function
    assert app.ensure_sync(hooks.plain) == hooks.plain
    for coroutine in (coroutine_function, hooks.coroutine):
        try:
            wrapped = app.ensure_sync(coroutine)
        except RuntimeError as exc:  # Flask without its `async` extra refuses coroutines
            assert "async" in str(exc)
        else:
            assert wrapped is not coroutine
    with patch.object(Flask, "ensure_sync", return_value="Flask's own answer") as flasks_check:
        assert app.ensure_sync(marked_as_coroutine) == "Flask's own answer"
    flasks_check.assert_called_once_with(marked_as_coroutine)
