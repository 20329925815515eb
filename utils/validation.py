"""Turns pydantic's validation errors into the envelope's per-field `details`, worded in
Chinese for every error type pydantic-core has (tests/test_messages.py walks them all)."""
import re
from typing import Any

from pydantic import ValidationError

# An answer names at most this many fields, and `_omitted` counts the errors left out:
# a 1 MiB body holds ~90,000 unknown fields, and a line for each made a 400 of megabytes.
MAX_DETAILS = 50
OMITTED = "_omitted"
CJK = re.compile(r"[\u4e00-\u9fff]")
INVALID = "取值无效"

MESSAGES = {
    # presence and shape
    "missing": "必填字段",
    "extra_forbidden": "不支持的字段",
    "none_required": "必须为 null",
    "json_invalid": "JSON 格式错误",
    "json_type": "必须是 JSON 文本",
    "model_type": "请求体必须是 JSON 对象",
    "model_attributes_type": "请求体必须是 JSON 对象",
    "dict_type": "必须是 JSON 对象",
    "mapping_type": "必须是 JSON 对象",
    "invalid_key": "对象的键必须是字符串",
    "list_type": "必须是数组",
    "tuple_type": "必须是数组",
    "set_type": "必须是数组",
    "frozen_set_type": "必须是数组",
    "deque_type": "必须是数组",
    "iterable_type": "必须是数组",
    "iteration_error": "数组无法逐项读取",
    "set_item_not_hashable": "数组元素无法比较",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "recursion_loop": "数据存在循环引用",
    "recursion_depth_exceeded": "嵌套过深",
    # text
    "string_type": "必须是字符串",
    "string_unicode": "必须是合法的 UTF-8 字符串",
    "string_too_short": "长度不能少于 {min_length}",
    "string_too_long": "长度不能超过 {max_length}",
    "string_pattern_mismatch": "格式不正确（须匹配 {pattern}）",
    "string_not_ascii": "只能包含 ASCII 字符",
    "bytes_type": "必须是字符串",
    "bytes_too_short": "长度不能少于 {min_length}",
    "bytes_too_long": "长度不能超过 {max_length}",
    "bytes_invalid_encoding": "不是合法的 {encoding} 编码",
    # choices
    "literal_error": "必须是 {expected} 之一",
    "enum": "必须是 {expected} 之一",
    "union_tag_invalid": "{discriminator} 必须是 {expected_tags} 之一",
    "union_tag_not_found": "缺少 {discriminator}",
    # numbers
    "bool_type": "必须是 true 或 false",
    "bool_parsing": "必须是 true/false/1/0",
    "int_type": "必须是整数",
    "int_parsing": "必须是整数",
    "int_parsing_size": "整数过大",
    "int_from_float": "必须是整数",
    "float_type": "必须是数字",
    "float_parsing": "必须是数字",
    "decimal_type": "必须是数字",
    "decimal_parsing": "必须是数字",
    "decimal_max_digits": "数字过大或位数过多（最多 {max_digits} 位数字）",
    "decimal_max_places": "最多 {decimal_places} 位小数",
    "decimal_whole_digits": "数字过大（整数部分最多 {whole_digits} 位）",
    "fraction_type": "必须是数字",
    "fraction_parsing": "必须是数字",
    "complex_type": "必须是数字",
    "complex_str_parsing": "必须是数字",
    "finite_number": "必须是有限的数字",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than": "必须小于 {lt}",
    "less_than_equal": "不能大于 {le}",
    "multiple_of": "必须是 {multiple_of} 的整数倍",
    # dates and times
    "date_type": "必须是日期（ISO 8601）",
    "date_parsing": "必须是日期（ISO 8601）",
    "date_from_datetime_parsing": "必须是日期（ISO 8601）",
    "date_from_datetime_inexact": "必须是日期，不能带时间",
    "date_past": "必须是过去的日期",
    "date_future": "必须是将来的日期",
    "time_type": "必须是时间（ISO 8601）",
    "time_parsing": "必须是时间（ISO 8601）",
    "datetime_type": "必须是日期时间（ISO 8601）",
    "datetime_parsing": "必须是日期时间（ISO 8601）",
    "datetime_object_invalid": "日期时间无效",
    "datetime_from_date_parsing": "必须是日期或日期时间（ISO 8601）",
    "datetime_past": "必须是过去的时间",
    "datetime_future": "必须是将来的时间",
    "timezone_naive": "不能带时区",
    "timezone_aware": "必须带时区",
    "timezone_offset": "时区偏移必须是 {tz_expected} 秒",
    "time_delta_type": "必须是时长",
    "time_delta_parsing": "必须是时长（ISO 8601）",
    # identifiers
    "url_type": "必须是 URL",
    "url_parsing": "不是合法的 URL",
    "url_syntax_violation": "不是合法的 URL",
    "url_too_long": "URL 长度不能超过 {max_length}",
    "url_scheme": "URL 协议必须是 {expected_schemes}",
    "uuid_type": "必须是 UUID",
    "uuid_parsing": "不是合法的 UUID",
    "uuid_version": "必须是第 {expected_version} 版 UUID",
    # what only Python callers (never a request) can cause
    "no_such_attribute": "不支持的字段",
    "get_attribute_error": INVALID,
    "needs_python_object": INVALID,
    "frozen_field": "该字段不可修改",
    "frozen_instance": "不可修改",
    "frozen_dict_type": "必须是 JSON 对象",
    "ordered_dict_type": "必须是 JSON 对象",
    "counter_type": "必须是 JSON 对象",
    "default_factory_not_called": INVALID,
    "dataclass_type": "必须是 JSON 对象",
    "dataclass_exact_type": "必须是 JSON 对象",
    "named_tuple_type": "必须是数组",
    "is_instance_of": INVALID,
    "is_subclass_of": INVALID,
    "callable_type": INVALID,
    "missing_sentinel_error": INVALID,
    "ellipsis_error": INVALID,
    "arguments_type": INVALID,
    "missing_argument": "必填字段",
    "unexpected_keyword_argument": "不支持的字段",
    "missing_keyword_only_argument": "必填字段",
    "unexpected_positional_argument": "不支持的字段",
    "missing_positional_only_argument": "必填字段",
    "multiple_argument_values": "字段重复",
}
def _choices(listed: str) -> str:
    """Choices pydantic lists as "'a', 'b' or 'c'" (or "'a', 'b', 'c'"), as Chinese lists
    them: 'a'、'b' 或 'c'."""
    choices = re.split(r", | or ", listed)
    return f"{'、'.join(choices[:-1])} 或 {choices[-1]}" if len(choices) > 1 else listed


def error_message(error: dict) -> str:
    """The error in Chinese. Our own validators raise Chinese ValueErrors and keep them;
    any other text (a library's English) becomes the plain 取值无效."""
    kind = error["type"]
    if kind in ("value_error", "assertion_error"):
        text = str(error.get("ctx", {}).get("error", ""))
        return text if CJK.search(text) else INVALID
    context = dict(error.get("ctx") or {})
    for name in ("expected", "expected_tags"):
        if name in context:
            context[name] = _choices(str(context[name]))
    return MESSAGES.get(kind, INVALID).format(**context)


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
        details.setdefault(path, error_message(error))
    return details
