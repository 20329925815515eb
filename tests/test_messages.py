"""Every validation message a client can get is Chinese, whatever pydantic found wrong."""
import re
import typing

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticKnownError
from pydantic_core.core_schema import ErrorType

from tests.helpers import assert_error
from utils.validation import MESSAGES, field_details

CJK = re.compile(r"[\u4e00-\u9fff]")
# Context values as pydantic fills them in (choices listed "'a', 'b' or 'c'").
SAMPLE_CONTEXT = {"expected": "'in', 'out' or 'adjust'", "expected_tags": "'add', 'reduce' or 'adjust'",
                  "discriminator": "'action'", "error": "invalid", "pattern": "^\\S+$"}
RAISED_BY_OUR_VALIDATORS = {"value_error", "assertion_error"}  # their text is the validator's own


def required_context(kind: str) -> dict[str, typing.Any]:
    """The context an error of `kind` carries, found by asking pydantic-core what is missing."""
    context: dict[str, typing.Any] = {}
    while True:
        try:
            PydanticKnownError(kind, context or None)
            return context
        except (KeyError, TypeError) as refusal:  # "'gt' required in context", "… must be a String"
            name, wants_text = re.search(r"'(\w+)' (?:required in context|context value must be (a String))",
                                         str(refusal)).groups()
            context[name] = SAMPLE_CONTEXT.get(name, "7" if wants_text or name in context else 7)


def message_for(kind: str) -> str:
    line = {"type": kind, "loc": ("field",), "input": "x", "ctx": required_context(kind)}
    return field_details(ValidationError.from_exception_data("Query", [line]))["field"]


def test_every_error_type_of_pydantic_core_has_chinese_wording():
    assert set(typing.get_args(ErrorType)) - RAISED_BY_OUR_VALIDATORS <= set(MESSAGES)


@pytest.mark.parametrize("kind", sorted(set(typing.get_args(ErrorType)) - RAISED_BY_OUR_VALIDATORS))
def test_each_error_type_reads_in_chinese(kind):
    message = message_for(kind)
    assert CJK.search(message), message
    assert not re.search(r"\b(Input|should|valid|Value error)\b", message), message


@pytest.mark.parametrize("raised, shown", [("必须是整数", "必须是整数"), ("invalid literal for int()", "取值无效")])
def test_a_validator_keeps_its_chinese_reason_and_never_shows_a_libraries_english(raised, shown):
    error = ValidationError.from_exception_data(
        "Body", [{"type": "value_error", "loc": ("quantity",), "input": "x", "ctx": {"error": ValueError(raised)}}])
    assert field_details(error) == {"quantity": shown}


@pytest.mark.parametrize("path, field, message", [
    ("/api/products/?min_price=abc", "min_price", "必须是数字"),
    ("/api/logs/?action=sell", "action", "必须是 'in'、'out'、'adjust'、'transfer_out' 或 'transfer_in' 之一"),
    ("/api/products/?min_price=1e400", "min_price", "数字过大或位数过多（最多 12 位数字）"),
    ("/api/products/?sort=cheapest", "sort", "'-updated_at' 之一"),
    ("/api/stock/?page=1.5", "page", "必须是整数"),
    ("/api/stock/?page=" + "9" * 5000, "page", "整数过大"),
    ("/api/stock/?low_only=maybe", "low_only", "必须是 true/false/1/0"),
])
def test_query_errors_are_chinese(client, path, field, message):
    details = assert_error(client.get(path), 400, "VALIDATION_ERROR")
    assert message in details[field]


def test_a_bad_batch_action_names_the_choices_in_chinese(client):
    details = assert_error(client.post("/api/stock/batch", json={"changes": [{"action": "sell"}]}), 400,
                           "VALIDATION_ERROR")
    assert details["changes.0"] == "'action' 必须是 'add'、'reduce'、'adjust'、'transfer' 或 'reserve' 之一"
