# Capture client for capture.sh: the statements SQLAlchemy 1.4 sends (see parse_log.py).
import psycopg2
from sqlalchemy import create_engine, inspect, select, MetaData, Table
def mark(s):
    m = psycopg2.connect("host=127.0.0.1 port=5544 user=postgres dbname=postgres application_name=sqlalchemy"); m.autocommit=True
    m.cursor().execute("SELECT 'marker: " + s.replace("'", "''") + "'"); m.close()
e = create_engine("postgresql+psycopg2://postgres@127.0.0.1:5544/postgres?application_name=sqlalchemy")
with e.connect() as conn:
    pass
i = inspect(e)
for name, f in [("get_table_names()", lambda: i.get_table_names()), ("get_view_names()", lambda: i.get_view_names()),
                ("get_columns('t')", lambda: i.get_columns('t')), ("get_columns('v')", lambda: i.get_columns('v')),
                ("get_pk_constraint('t')", lambda: i.get_pk_constraint('t')),
                ("get_foreign_keys('t')", lambda: i.get_foreign_keys('t')), ("get_indexes('t')", lambda: i.get_indexes('t')),
                ("get_schema_names()", lambda: i.get_schema_names()),
                ("has_table('t')", lambda: e.dialect.has_table(e.connect(), 't'))]:
    mark(name); f()
mark("Table('t', autoload_with=engine)")
md = MetaData(); tt = Table('t', md, autoload_with=e)
mark("select(t)")
with e.connect() as conn:
    conn.execute(select(tt).where(tt.c.x > 0)).fetchall()
