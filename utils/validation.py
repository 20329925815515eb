"""Turns pydantic's validation errors into the envelope's per-field `details`."""
from typing import Any

from pydantic import ValidationError

# An answer names at most this many fields, and `_omitted` counts the errors left out:
# a 1 MiB body holds ~90,000 unknown fields, and a line for each made a 400 of megabytes.
MAX_DETAILS = 50
OMITTED = "_omitted"

# Chinese wording for the error kinds clients meet most; others keep pydantic's text.
MESSAGES = {
    "missing": "必填字段",
    "extra_forbidden": "不支持的字段",
    "string_type": "必须是字符串",
    "string_too_short": "不能为空",
    "string_too_long": "长度不能超过 {max_length}",
    "greater_than_equal": "不能小于 {ge}",
    "greater_than": "必须大于 {gt}",
    "less_than_equal": "不能大于 {le}",
    "decimal_max_places": "最多 {decimal_places} 位小数",
    "decimal_max_digits": "最多 {max_digits} 位数字",
    "literal_error": "必须是 {expected} 之一",
    "int_parsing": "必须是整数",
    "bool_parsing": "必须是 true/false/1/0",
    "bool_type": "必须是 true 或 false",
    "string_pattern_mismatch": "格式不正确（须匹配 {pattern}）",
    "union_tag_invalid": "{discriminator} 必须是 {expected_tags} 之一",
    "union_tag_not_found": "缺少 {discriminator}",
    "json_invalid": "JSON 格式错误",
    "model_type": "请求体必须是 JSON 对象",
    "model_attributes_type": "请求体必须是 JSON 对象",
    "list_type": "必须是数组",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "datetime_from_date_parsing": "必须是日期或日期时间（ISO 8601）",
}


def _message(error: dict) -> str:
    template = MESSAGES.get(error["type"])
    if template:
        return template.format(**error.get("ctx", {}))
    message = error["msg"]
    return message.removeprefix("Value error, ")


def field_details(exc: ValidationError) -> dict[str, Any]:
    """`{"field.path": "what is wrong"}` for the first MAX_DETAILS fields; errors about
    the whole body use `body`. Words no more errors than it lists."""
    details: dict[str, Any] = {}
    errors = exc.errors(include_url=False)
    for index, error in enumerate(errors):
        if len(details) == MAX_DETAILS:
            details[OMITTED] = len(errors) - index
            break
        path = ".".join(str(part) for part in error["loc"]) or "body"
        details.setdefault(path, _message(error))
    return details
