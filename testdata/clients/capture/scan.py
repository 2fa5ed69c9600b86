"""Runs every statement of pgwire/pgcatalog/testdata/client_queries.sql
against a server (PGHOST, PGPORT, PGUSER, PGDATABASE) and prints the ones
that fail, with their error: a quick list of catalog gaps.

    /usr/bin/python3 testdata/clients/capture/scan.py [client_queries.sql]

Parameters of extended-protocol statements ("-- params:") are inlined as
quoted literals. COPY, cursor and transaction statements are skipped. The
server should hold a table (or stream) t (x int, y text) and a view (or
continuous query) v AS SELECT x FROM t, like the capture's.
"""
import os
import re
import sys

import psycopg2

path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "pgwire", "pgcatalog", "testdata", "client_queries.sql")
src = open(path).read()
conn = psycopg2.connect("")
conn.autocommit = True
failed = total = 0
for block in src.split("\n;;\n"):
    lines = block.strip("\n").split("\n")
    client = params = None
    body = []
    for l in lines:
        if l.startswith("-- client: "):
            client = l[len("-- client: "):]
        elif l.startswith("-- params: "):
            params = l[len("-- params: "):]
        elif l.startswith("-- ") and not body:
            continue
        else:
            body.append(l)
    sql = "\n".join(body).strip()
    if not sql or client is None:
        continue
    if re.match(r"(?i)\s*(copy|begin|commit|rollback|declare|fetch|close)\b", sql):
        continue
    if params:
        vals = dict(re.findall(r"\$(\d+) = ('(?:[^']|'')*'|NULL)", params))
        sql = re.sub(r"\$(\d+)\b", lambda m: vals.get(m.group(1), m.group(0)), sql)
    total += 1
    try:
        cur = conn.cursor()
        cur.execute(sql)
    except Exception as e:
        failed += 1
        code = getattr(e, "pgcode", "") or ""
        msg = str(e).strip().split("\n")[0]
        print("-- client: %s\n-- error: %s %s\n%s\n;;\n" % (client, code, msg, sql))
print("-- %d of %d statements failed" % (failed, total))
