"""The local MySQL/MariaDB server the benchmarks create their databases on."""
from sqlalchemy import create_engine, text

DRIVERS = ("mysqldb", "pymysql")  # mysqlclient (C) when installed: requirements-mysql.txt


def installed_driver() -> str:
    """mysqlclient when it is installed (what production should run), else PyMySQL."""
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return "pymysql"
    return "mysqldb"


def fresh_database(name: str, driver: str) -> str:
    """The URL of an empty utf8mb4 database `name` on the local server (dropped first)."""
    server = f"mysql+{driver}://root@127.0.0.1:3306/"
    engine = create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    engine.dispose()
    return f"{server}{name}?charset=utf8mb4"


def buffer_pool_line(url: str) -> str:
    """The server's InnoDB buffer pool against the size of the database at `url`: below
    it, every miss is a disk read, and the latencies measure the disk (docs/operations.md
    advises a pool that holds the working set)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        pool = connection.scalar(text("SELECT @@innodb_buffer_pool_size"))
        size = connection.scalar(text("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                                      "WHERE table_schema = DATABASE()"))
    engine.dispose()
    line = f"InnoDB buffer pool {pool / 2**20:,.0f} MB for a database of {size / 2**20:,.0f} MB"
    if pool < size:
        line += " (smaller: reads go to the disk; see docs/operations.md)"
    return line
