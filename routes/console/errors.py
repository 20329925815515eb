"""Friendly HTML error pages, for requests under `/console/` only (the API keeps JSON)."""
from flask import current_app, render_template, request
from markupsafe import escape

from security import page_policy

PREFIX = "/console"

PAGES = {
    400: ("请求无效", "提交的内容无法处理，请返回上一页检查后重试。"),
    403: ("没有权限", "你没有执行该操作的权限。"),
    404: ("页面不存在", "找不到你要访问的页面或商品，它可能已被删除，或者地址有误。"),
    405: ("不支持该操作", "这个页面不支持该请求方式。"),
    409: ("操作未完成", "数据状态已变化，请刷新后重试。"),
    413: ("提交内容过大", "提交的内容超过了 1 MiB 的上限。"),
    500: ("服务器出错了", "服务器内部错误，已记录日志。请稍后重试。"),
    503: ("服务暂时不可用", "数据库暂时不可用，请稍后重试。"),
}


def is_console_request() -> bool:
    """True for `/console` and everything below it."""
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def error_page(status: int, message: str | None = None):
    """An HTML page with the status, a short explanation and a way back; never a trace.
    It carries its page policy itself: a path under /console/ that matches no route
    has no blueprint whose hook would add it."""
    title, default = PAGES.get(status, ("出错了", "请求未能完成。"))
    try:
        html = render_template("console/error.html", status=status, title=title, message=message or default)
    except Exception:  # the page must never fail into a trace, even if a template cannot render
        current_app.logger.exception("error page failed to render")
        html = f"<!doctype html><meta charset=utf-8><title>{status}</title><h1>{status} {title}</h1>" \
               f"<p>{escape(message or default)}</p><p><a href='/console/'>返回控制台</a></p>"
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
               "Content-Security-Policy": page_policy()}
    return html, status, headers
