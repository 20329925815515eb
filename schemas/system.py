"""Response models of the service-level endpoints."""
from schemas.common import ResponseModel


class IndexOut(ResponseModel):
    name: str
    version: str
    links: dict[str, str]


class HealthOut(ResponseModel):
    status: str
    database: str
    version: str


class LiveOut(ResponseModel):
    status: str


class MigrationsOut(ResponseModel):
    current: list[str] | None
    head: list[str]
    up_to_date: bool
    managed: bool


class ReadyOut(ResponseModel):
    status: str
    database: str
    migrations: MigrationsOut


class DeletedOut(ResponseModel):
    id: int
