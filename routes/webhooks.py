"""`/api/webhooks`: where events are pushed (admin only; routes/access.py)."""
from flask import Blueprint, url_for

from openapi_spec import operation
from routes.parsing import dump, dump_all, json_body, query_args
from schemas.common import PageQuery
from schemas.event import (
    DeliveryOut,
    DeliveryQuery,
    SecretRotation,
    WebhookCreate,
    WebhookOut,
    WebhookSecretOut,
    WebhookUpdate,
)
from schemas.system import DeletedOut
from services import webhook_service
from utils.response_handler import paginated, success

bp = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")

CREATE_EXAMPLE = {"url": "https://erp.example.com/hooks/inventory", "events": ["stock.changed", "stock.low"],
                  "description": "ERP 库存同步"}


@bp.post("/", strict_slashes=False)
@operation(summary="注册 Webhook（密钥只在此显示一次）", tag="webhooks", data=WebhookSecretOut, body=WebhookCreate,
           status=201, example=CREATE_EXAMPLE,
           description="Events from now on are delivered to `url`, signed with the `secret` answered here once.")
def create_webhook():
    webhook = webhook_service.create_webhook(json_body(WebhookCreate))
    location = url_for("webhooks.get_webhook", webhook_id=webhook.id)
    return success(dump(WebhookSecretOut, webhook), "创建成功", 201, {"Location": location})


@bp.get("/", strict_slashes=False)
@operation(summary="Webhook 列表", tag="webhooks", data=WebhookOut, query=PageQuery, paginated=True)
def list_webhooks():
    page = webhook_service.list_webhooks(query_args(PageQuery))
    return paginated(dump_all(WebhookOut, page.items), page)


@bp.get("/<id:webhook_id>")
@operation(summary="Webhook 详情", tag="webhooks", data=WebhookOut)
def get_webhook(webhook_id: int):
    return success(dump(WebhookOut, webhook_service.get_webhook(webhook_id)))


@bp.patch("/<id:webhook_id>")
@operation(summary="修改 Webhook（只改所给字段）", tag="webhooks", data=WebhookOut, body=WebhookUpdate,
           example={"events": ["*"], "is_active": True})
def update_webhook(webhook_id: int):
    return success(dump(WebhookOut, webhook_service.update_webhook(webhook_id, json_body(WebhookUpdate))), "更新成功")


@bp.delete("/<id:webhook_id>")
@operation(summary="删除 Webhook 及其投递记录", tag="webhooks", data=DeletedOut)
def delete_webhook(webhook_id: int):
    webhook_service.delete_webhook(webhook_id)
    return success({"id": webhook_id}, "删除成功")


@bp.post("/<id:webhook_id>/rotate-secret")
@operation(summary="更换签名密钥（旧密钥在宽限期内同时签名）", tag="webhooks", data=WebhookSecretOut,
           body=SecretRotation, example={"grace_seconds": 86400},
           description="During the grace period `X-Inventory-Signature` carries two signatures, the new secret's "
                       "first: `sha256=<new>, sha256=<old>`.")
def rotate_secret(webhook_id: int):
    webhook = webhook_service.rotate_secret(webhook_id, json_body(SecretRotation))
    return success(dump(WebhookSecretOut, webhook), "密钥已更换")


@bp.get("/<id:webhook_id>/deliveries")
@operation(summary="Webhook 的投递记录（新的在前）", tag="webhooks", data=DeliveryOut, query=DeliveryQuery,
           paginated=True)
def list_deliveries(webhook_id: int):
    page = webhook_service.list_deliveries(webhook_id, query_args(DeliveryQuery))
    return paginated(dump_all(DeliveryOut, page.items), page)


@bp.post("/<id:webhook_id>/test")
@operation(summary="发送测试事件 ping", tag="webhooks", data=DeliveryOut, status=202,
           description="Queues a signed `ping` delivery; the worker sends it like any event.")
def send_test(webhook_id: int):
    return success(dump(DeliveryOut, webhook_service.send_test(webhook_id)), "已排队发送", 202)
