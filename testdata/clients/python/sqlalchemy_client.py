"""Drives Spate through SQLAlchemy 1.4 (python3-sqlalchemy) over psycopg2,
as Superset and other SQLAlchemy-based tools do.

cmd/spate/clients_test.go runs it and checks what it prints (see
common.py). Connection: PGHOST, PGPORT, PGUSER, PGDATABASE. SPATE_RELATIONS
lists the relations whose columns it reads.
"""
import os

from sqlalchemy import MetaData, Table, create_engine, inspect, select

from common import out, step, value

url = "postgresql+psycopg2://%s@%s:%s/%s" % (
    os.environ.get("PGUSER", "spate"),
    os.environ.get("PGHOST", "127.0.0.1"),
    os.environ.get("PGPORT", "5433"),
    os.environ.get("PGDATABASE", "spate"),
)
engine = None
insp = None


def connect():
    global engine, insp
    engine = create_engine(url)
    with engine.connect() as c:
        out("server", ".".join(str(p) for p in engine.dialect.server_version_info))
    insp = inspect(engine)


def table_names():
    for name in insp.get_table_names():
        out("table", name)


def view_names():
    # SQLAlchemy 1.4 has no get_materialized_view_names: get_view_names
    # lists plain and materialized views unless told otherwise.
    for name in insp.get_view_names():
        out("view", name)
    for name in insp.get_view_names(include=("materialized",)):
        out("matview", name)


def schema_names():
    for name in insp.get_schema_names():
        out("schema", name)


def columns(rel):
    def run():
        for c in insp.get_columns(rel):
            out("column", rel, c["name"], str(c["type"]), c["nullable"])
    return run


def pk():
    c = insp.get_pk_constraint("sites")
    out("pk", "sites", ",".join(c["constrained_columns"]))


def has_table():
    with engine.connect() as c:
        for rel in ("readings", "per_site", "nosuch"):
            out("has", rel, engine.dialect.has_table(c, rel))


def reflect_select():
    # Table reflection asks for columns, keys, indexes, constraints and
    # comments; then a select() with a bound parameter.
    md = MetaData()
    per_site = Table("per_site", md, autoload_with=engine)
    out("reflected", ",".join(c.name for c in per_site.columns))
    with engine.connect() as c:
        for row in c.execute(select(per_site).where(per_site.c.n >= 1).order_by(per_site.c.site)):
            out("row", *[value(v) for v in row])
    sites = Table("sites", md, autoload_with=engine)
    out("reflected", ",".join(c.name for c in sites.columns))
    with engine.connect() as c:
        for row in c.execute(select(sites.c.site, sites.c.capacity).where(sites.c.region == "eu")):
            out("site", *[value(v) for v in row])


step("connect", connect)
if insp is not None:
    step("get_table_names", table_names)
    step("get_view_names", view_names)
    step("get_schema_names", schema_names)
    for rel in os.environ.get("SPATE_RELATIONS", "readings,sites,per_site,hot").split(","):
        step("get_columns " + rel, columns(rel))
    step("get_pk_constraint sites", pk)
    step("has_table", has_table)
    step("reflect and select", reflect_select)
