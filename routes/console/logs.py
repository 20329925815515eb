"""The movement log with the API's filters, newest first."""
from flask import render_template

from routes.console import bp
from routes.console.common import PER_PAGE, query_or_errors
from schemas.log import LogQuery
from services import log_service


@bp.get("/logs")
def logs():
    """Filters `product_id`, `action`, `operator`, `start_date`, `end_date`, as `GET /api/logs/`."""
    query, errors = query_or_errors(LogQuery, {"per_page": PER_PAGE})
    return render_template("console/logs.html", page=log_service.list_logs(query), query=query, errors=errors)
