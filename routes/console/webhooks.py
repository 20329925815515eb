"""Webhooks (admin): where events go, and what became of each delivery."""
from flask import flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from routes.console import bp
from routes.console.common import PER_PAGE, describe, parse, query_or_errors
from schemas.common import PageQuery
from schemas.event import EVENT_TYPES, DeliveryQuery, WebhookCreate
from services import webhook_service
from utils.exceptions import AppError

STATUS_LABELS = {"pending": "待发送", "delivered": "已送达", "failed": "失败"}


def _webhooks_page(errors: dict | None = None, message: str | None = None, created=None, status: int = 200):
    page = webhook_service.list_webhooks(PageQuery(per_page=100))
    return render_template("console/webhooks.html", webhooks=page.items, event_types=EVENT_TYPES, errors=errors or {},
                           message=message, created=created, form=MultiDict() if created else request.form), status


@bp.get("/webhooks")
def webhooks():
    return _webhooks_page()


@bp.post("/webhooks")
def create_webhook():
    """Register one; its secret is shown on the answering page only, once."""
    events = request.form.getlist("events") or ["*"]
    payload = {"url": request.form.get("url", "").strip(), "events": events,
               "description": request.form.get("description", "").strip() or None}
    data, errors = parse(WebhookCreate, payload)
    if data is None:
        return _webhooks_page(errors, "请检查标红的字段", status=400)
    try:
        created = webhook_service.create_webhook(data)
    except AppError as exc:
        message, errors = describe(exc)
        return _webhooks_page(errors, message, status=exc.status)
    return _webhooks_page(created=created, status=201)


@bp.get("/webhooks/<id:webhook_id>")
def webhook(webhook_id: int):
    """A webhook and its deliveries, newest first, by status."""
    query, errors = query_or_errors(DeliveryQuery, {"per_page": PER_PAGE})
    return render_template("console/webhook.html", webhook=webhook_service.get_webhook(webhook_id),
                           page=webhook_service.list_deliveries(webhook_id, query), query=query, errors=errors,
                           status_labels=STATUS_LABELS)


@bp.post("/webhooks/<id:webhook_id>/test")
def test_webhook(webhook_id: int):
    delivery = webhook_service.send_test(webhook_id)
    flash(f"测试事件 ping 已排队（投递编号 {delivery.uid}），由投递进程发送", "success")
    return redirect(url_for("console.webhook", webhook_id=webhook_id))
