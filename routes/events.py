"""`/api/events`: the change feed, read by cursor."""
from flask import Blueprint

from openapi_spec import operation
from routes.parsing import dump, query_args
from schemas.event import EventQuery, FeedOut
from services import event_service
from utils.response_handler import success

bp = Blueprint("events", __name__, url_prefix="/api/events")


@bp.get("/", strict_slashes=False)
@operation(summary="变更事件流（按游标读取，不漏不重）", tag="events", data=FeedOut, query=EventQuery,
           description="Start with `after=0` and pass each answer's `next_after` as the next `after`: every "
                       "committed event arrives exactly once, in commit order (docs/events.md).")
def feed():
    query = query_args(EventQuery)
    return success(dump(FeedOut, event_service.read_feed(query.after, query.limit)))
