"""Reservations: the list with the API's filters, and fulfil / release on each active one."""
from flask import flash, redirect, render_template, request, url_for

from models import STATUSES
from routes.access import actor_name
from routes.console import bp
from routes.console.common import PER_PAGE, describe, query_or_errors
from schemas.reservation import Fulfil, ReservationQuery
from services import reservation_service
from utils.exceptions import AppError


@bp.get("/reservations")
def reservations():
    """Filters `status`, `product_id`, `warehouse_id`, `reference`, as `GET /api/reservations/`."""
    query, errors = query_or_errors(ReservationQuery, {"per_page": PER_PAGE})
    return render_template("console/reservations.html", page=reservation_service.list_reservations(query),
                           query=query, errors=errors, status_labels=STATUSES)


@bp.post("/reservations/<id:reservation_id>")
def end_reservation(reservation_id: int):
    """Ship all a reservation holds (`action=fulfil`), or give it back (`action=release`);
    a refusal is shown, not raised."""
    action = request.form.get("action")
    try:
        if action == "fulfil":
            result = reservation_service.fulfil(reservation_id, Fulfil(), actor_name())
            flash(f"预留 {reservation_id} 已出库 {result['log'].quantity:,} 件", "success")
        elif action == "release":
            reservation_service.release(reservation_id)
            flash(f"预留 {reservation_id} 已释放", "success")
        else:
            flash("未知的操作", "error")
    except AppError as exc:
        message, _ = describe(exc)
        status = exc.details.get("status")
        flash(f"预留 {reservation_id}：{message}" + (f"（当前状态：{STATUSES.get(status, status)}）"
                                                     if status else ""), "error")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/console/") else url_for("console.reservations"))
