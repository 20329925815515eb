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


class DeletedOut(ResponseModel):
    id: int
