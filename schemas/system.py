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


class ClusterOut(ResponseModel):
    """A Galera node's own view (its wsrep status variables, without the prefix)."""

    synced: bool
    ready: str | None = None
    local_state: str | None = None
    local_state_comment: str | None = None
    cluster_status: str | None = None


class ReadyOut(ResponseModel):
    status: str
    database: str
    migrations: MigrationsOut
    cluster: ClusterOut | None = None  # on a Galera node only


class DeletedOut(ResponseModel):
    id: int
