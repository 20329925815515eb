"""Times as people read them: in the display time zone (DISPLAY_TIMEZONE, default UTC),
for the console and the human columns of exports. The API and the database keep UTC."""
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app

EXTENSION = "display_zone"
MOMENT = "%Y-%m-%d %H:%M:%S"


def zone_named(name: str) -> tzinfo:
    """The IANA zone `name` (`Asia/Shanghai`); a name the system's time zone database
    (or the `tzdata` package) does not know stops the start-up."""
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuntimeError(f"DISPLAY_TIMEZONE={name!r} is no IANA time zone (e.g. Asia/Shanghai or UTC)") from None


def display_zone() -> tzinfo:
    """The current app's display zone."""
    return current_app.extensions[EXTENSION]


def local_moment(moment: datetime, zone: tzinfo | None = None) -> datetime:
    """`moment` (aware, or naive UTC as stored) in `zone`, by default the app's display zone."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone or display_zone())


def format_moment(moment: datetime | None, zone: tzinfo | None = None, pattern: str = MOMENT) -> str:
    """`2026-11-25 05:30:00` for a person reading it in `zone`; `—` for no time at all."""
    return "—" if moment is None else local_moment(moment, zone).strftime(pattern)


def zone_label(zone: tzinfo | None = None) -> str:
    """How the zone is named to a person: `UTC`, `Asia/Shanghai`."""
    zone = zone or display_zone()
    return "UTC" if zone is timezone.utc else str(zone)


def register_display_zone(app: Flask) -> None:
    app.extensions[EXTENSION] = zone_named(app.config["DISPLAY_TIMEZONE"])
