"""The dashboard and the statistics page."""
from flask import render_template

from routes.console import bp
from routes.console.common import query_or_errors
from schemas.log import LogQuery, StatisticsQuery
from services import dashboard_service, log_service, statistics_service

RECENT = 10


@bp.get("/")
def dashboard():
    """Totals, stock value, low-stock count, recent movements and 30 days of in/out."""
    return render_template(
        "console/dashboard.html",
        overview=dashboard_service.overview(),
        recent=log_service.list_logs(LogQuery(per_page=RECENT)).items,
        daily=dashboard_service.daily_movements(),
    )


@bp.get("/statistics")
def statistics():
    """The API's `/api/logs/statistics` for a chosen range and product."""
    query, errors = query_or_errors(StatisticsQuery)
    return render_template(
        "console/statistics.html", stats=statistics_service.statistics(query), query=query, errors=errors
    )
