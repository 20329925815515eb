"""What every console page shares: CSRF on every POST, security headers, template
filters, and turning form fields into the API's request models."""
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import request, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from pydantic import BaseModel, ValidationError

from models import ACTIONS
from routes.access import current_caller
from routes.console import bp
from services import dashboard_service
from utils.display_time import format_moment, zone_label
from utils.exceptions import AppError, InsufficientStock, ValidationFailed
from utils.validation import field_details

INTEGER = re.compile(r"[+-]?\d{1,30}")
PER_PAGE = 20

# Only this app's own files: no inline scripts, no CDN, no framing.


class CsrfForm(FlaskForm):
    """No fields of its own: validates the `csrf_token` every console form carries."""


@bp.before_request
def _check_csrf():
    """Every console POST must carry this session's token (the JSON API is not affected)."""
    if request.method == "POST" and not CsrfForm().validate():
        raise CSRFError("表单安全校验失败（CSRF 令牌缺失、无效或已过期），请刷新页面后重新提交。")


@bp.context_processor
def _template_helpers() -> dict[str, Any]:
    return {"csrf_token": generate_csrf, "action_labels": ACTIONS, "page_url": _page_url,
            "low_stock_badge": dashboard_service.low_stock_count, "current_caller": current_caller,
            "display_zone": zone_label}


def _page_url(page: int) -> str:
    """This page's URL with the same filters and another page number (a cursor, which
    cannot go with one, is left out)."""
    args = {name: value for name, value in request.args.items() if name != "before_id"} | {"page": page}
    return url_for(request.endpoint, **(request.view_args or {}), **args)


@bp.app_template_filter("num")
def _num(value) -> str:
    return "—" if value is None else f"{value:,}"


@bp.app_template_filter("money")
def _money(value) -> str:
    return "—" if value is None else f"¥{Decimal(value):,.2f}"


@bp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    """Timestamps in the display time zone (DISPLAY_TIMEZONE); the API answers UTC."""
    return format_moment(value)


def _convert(raw: str, kind: str) -> Any:
    """A form string as the JSON value the API would receive. Text that is no number
    stays text, so the API's own validator names it (必须是整数 / 必须是数字)."""
    if kind == "int" and INTEGER.fullmatch(raw):
        return int(raw)
    if kind == "money":
        try:
            return Decimal(raw)
        except InvalidOperation:
            return raw
    return raw


def form_payload(fields: dict[str, str]) -> dict[str, Any]:
    """`{name: kind}` (text, int, money) read from the posted form; blank fields are
    left out, so required ones are reported as missing and optional ones take defaults."""
    payload = {}
    for name, kind in fields.items():
        raw = request.form.get(name, "").strip()
        if raw:
            payload[name] = _convert(raw, kind)
    return payload


def parse(model: type[BaseModel], payload: dict[str, Any]) -> tuple[BaseModel | None, dict[str, str]]:
    """`payload` as `model`, or the API's per-field messages."""
    try:
        return model.model_validate(payload), {}
    except ValidationError as exc:
        return None, field_details(exc)


def describe(exc: AppError) -> tuple[str, dict[str, str]]:
    """A service error as a sentence for the page plus per-field messages (the service
    has rolled its transaction back already)."""
    if isinstance(exc, InsufficientStock):
        details = exc.details
        return f"{exc.message}：当前库存 {details.get('available'):,}，本次需要 {details.get('requested'):,}", {}
    if isinstance(exc, ValidationFailed):
        return exc.message, {key: value for key, value in exc.details.items() if isinstance(value, str)}
    return exc.message, {}


def query_or_errors(model: type[BaseModel], defaults: dict | None = None):
    """The query string as `model`, with messages for what was wrong: a bad filter falls
    back to its default and the others still apply; filters that are only wrong together
    (a start after the end) all fall back."""
    defaults = defaults or {}
    args = {key: value for key, value in request.args.items() if value.strip()}
    try:
        return model.model_validate({**defaults, **args}), {}
    except ValidationError as exc:
        errors, bad = field_details(exc), {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    try:
        return model.model_validate({**defaults, **{key: value for key, value in args.items() if key not in bad}}), errors
    except ValidationError:
        return model.model_validate(defaults), errors
