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
