"""`/api/reservations`: units held for an order until fulfilled, released or lapsed."""
from flask import Blueprint, url_for

from openapi_spec import operation
from routes.access import actor_name
from routes.idempotency import idempotent
from routes.parsing import dump, dump_all, json_body, optional_json_body, query_args
from schemas.reservation import Extend, Fulfil, Hold, ReservationOut, ReservationQuery
from schemas.stock import FulfilOut
from services import reservation_service
from utils.response_handler import paginated, success

bp = Blueprint("reservations", __name__, url_prefix="/api/reservations")


@bp.get("/", strict_slashes=False)
@operation(summary="预留列表（新的在前）", tag="reservations", data=ReservationOut, query=ReservationQuery,
           paginated=True)
def list_reservations():
    page = reservation_service.list_reservations(query_args(ReservationQuery))
    return paginated(dump_all(ReservationOut, page.items), page)


@bp.post("/", strict_slashes=False)
@operation(summary="预留库存（只能预留可用数量）", tag="reservations", data=ReservationOut, body=Hold, status=201,
           errors=("NOT_FOUND", "INSUFFICIENT_STOCK", "CONFLICT"),
           example={"product_id": 1, "quantity": 2, "warehouse_id": 1, "reference": "订单-20261204-001",
                    "expires_in": 900, "operator": "张三"})
@idempotent
def reserve():
    reservation = reservation_service.reserve(json_body(Hold), actor_name())
    location = url_for("reservations.get_reservation", reservation_id=reservation.id)
    return success(dump(ReservationOut, reservation), "预留成功", 201, {"Location": location})


@bp.get("/<id:reservation_id>")
@operation(summary="预留详情", tag="reservations", data=ReservationOut, errors=("NOT_FOUND",))
def get_reservation(reservation_id: int):
    return success(dump(ReservationOut, reservation_service.get_reservation(reservation_id)))


@bp.post("/<id:reservation_id>/fulfil")
@operation(summary="预留出库（不给 quantity 时全部出库；部分出库后其余仍保留）", tag="reservations", data=FulfilOut,
           body=Fulfil, errors=("NOT_FOUND", "CONFLICT"),
           example={"quantity": 1, "reason": "订单发货", "operator": "李四"})
@idempotent
def fulfil(reservation_id: int):
    result = reservation_service.fulfil(reservation_id, optional_json_body(Fulfil), actor_name())
    return success(dump(FulfilOut, result), "出库成功")


@bp.post("/<id:reservation_id>/release")
@operation(summary="释放预留（归还可用数量）", tag="reservations", data=ReservationOut, errors=("NOT_FOUND", "CONFLICT"))
@idempotent
def release(reservation_id: int):
    return success(dump(ReservationOut, reservation_service.release(reservation_id)), "已释放")


@bp.post("/<id:reservation_id>/extend")
@operation(summary="延长预留（自现在起 expires_in 秒）", tag="reservations", data=ReservationOut, body=Extend,
           errors=("NOT_FOUND", "CONFLICT"), example={"expires_in": 1800})
@idempotent
def extend(reservation_id: int):
    return success(dump(ReservationOut, reservation_service.extend(reservation_id, json_body(Extend))), "已延长")
