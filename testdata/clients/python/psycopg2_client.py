"""Drives Spate through psycopg2 (python3-psycopg2), as a notebook does.

cmd/spate/clients_test.go runs it and checks what it prints (see
common.py). Connection: the libpq environment variables PGHOST, PGPORT,
PGUSER, PGDATABASE. SPATE_CSV is a CSV file of readings to COPY into the
stream; SPATE_SUB_INSERT is the INSERT the SUBSCRIBE steps run on a second
connection while their cursor is open; SPATE_SITES is the number of rows
per_site has before it.
"""
import io
import os
import threading

import psycopg2

from common import out, pytype, step, value

conn = None


def connect():
    global conn
    conn = psycopg2.connect("")  # everything from PG* variables
    out("server", conn.server_version)


def copy_in():
    cur = conn.cursor()
    with open(os.environ["SPATE_CSV"]) as f:
        cur.copy_expert("COPY readings FROM STDIN (FORMAT csv)", f)
    out("copied", cur.rowcount)
    conn.commit()


def result(cur, kind):
    for d in cur.description:
        out("desc", d.name, d.type_code)
    for row in cur.fetchall():
        out(kind, *[value(v) for v in row])
        out("types", *[pytype(v) for v in row])


def select_per_site():
    cur = conn.cursor()
    cur.execute("SELECT site, n, total, last_seq FROM per_site ORDER BY site")
    result(cur, "row")
    conn.commit()


def select_hot():
    cur = conn.cursor()
    cur.execute("SELECT * FROM hot ORDER BY seq")
    result(cur, "row")
    conn.commit()


def params():
    cur = conn.cursor()
    cur.execute("SELECT site, n, total, last_seq FROM per_site WHERE site = %s AND n >= %s", ("north", 1))
    result(cur, "row")
    conn.commit()


def copy_out():
    cur = conn.cursor()
    buf = io.StringIO()
    cur.copy_expert("COPY (SELECT site, n, total, last_seq FROM per_site ORDER BY site) TO STDOUT", buf)
    for line in buf.getvalue().splitlines():
        out("copy", *line.split("\t"))
    buf = io.StringIO()
    cur.copy_expert("COPY sites TO STDOUT (FORMAT csv)", buf)
    for line in buf.getvalue().splitlines():
        out("copycsv", *line.split(","))
    conn.commit()


def named_select():
    # A named cursor over a snapshot SELECT, read in pieces of itersize:
    # FETCH FORWARD 3 FROM "rows" until it returns nothing.
    cur = conn.cursor("rows")
    cur.itersize = 3
    try:
        cur.execute("SELECT * FROM hot ORDER BY seq")
        for row in cur:
            out("row", *[value(v) for v in row])
        cur.close()
    finally:
        conn.rollback()


def insert_elsewhere():
    other = psycopg2.connect("")
    other.autocommit = True
    other.cursor().execute(os.environ["SPATE_SUB_INSERT"])
    other.close()


def subscribe():
    # DECLARE needs a transaction: psycopg2 opens one with the first
    # statement (autocommit is off).
    cur = conn.cursor()
    try:
        cur.execute("DECLARE c CURSOR FOR SUBSCRIBE per_site")
        # The current rows, one per site (SPATE_SITES), maybe in pieces.
        have = 0
        for k in range(10):
            cur.execute("FETCH 10 FROM c WITH (timeout = '1s')")
            if k == 0:
                for d in cur.description:
                    out("desc", d.name, d.type_code)
            for row in cur.fetchall():
                out("sub", *[value(v) for v in row])
                have += 1
            if have >= int(os.environ["SPATE_SITES"]):
                break
        insert_elsewhere()
        got = 0
        for _ in range(10):
            cur.execute("FETCH 10 FROM c WITH (timeout = '1s')")
            for row in cur.fetchall():
                out("change", *[value(v) for v in row])
                got += 1
            if got >= 2:
                break
        cur.execute("CLOSE c")
    finally:
        conn.rollback()


def named_cursor():
    # A named (server-side) cursor: psycopg2 sends DECLARE "subs" CURSOR
    # WITHOUT HOLD FOR SUBSCRIBE per_site, then FETCH FORWARD n FROM "subs".
    cur = conn.cursor("subs")
    try:
        cur.execute("SUBSCRIBE per_site")
        for row in cur.fetchmany(int(os.environ["SPATE_SITES"])):
            out("sub", *[value(v) for v in row])
        cur.close()
    finally:
        conn.rollback()


def cancel():
    # connection.cancel() from another thread stops a FETCH that waits for
    # rows; the connection stays usable after a rollback.
    cur = conn.cursor()
    done = threading.Event()

    def canceller():
        # Every 500 ms until the FETCH returns: a cancel that comes before
        # the FETCH is sent does nothing.
        while not done.wait(0.5):
            conn.cancel()

    timer = threading.Thread(target=canceller)
    try:
        cur.execute("DECLARE w CURSOR FOR SUBSCRIBE per_site")
        cur.execute("FETCH ALL FROM w WITH (timeout = '1s')")
        cur.fetchall()
        timer.start()
        try:
            cur.execute("FETCH 10 FROM w")
            out("notcancelled")
        except psycopg2.Error as e:
            out("cancelled", e.pgcode)
    finally:
        done.set()
        if timer.is_alive():
            timer.join()
        conn.rollback()
    cur.execute("SELECT n FROM per_site WHERE site = 'east'")
    for (n,) in cur.fetchall():
        out("after", n)
    conn.rollback()


step("connect", connect)
if conn is not None:
    step("copy_expert from", copy_in)
    step("select per_site", select_per_site)
    step("select hot", select_hot)
    step("parameters", params)
    step("copy_expert to", copy_out)
    step("named cursor select", named_select)
    step("named cursor", named_cursor)
    step("subscribe", subscribe)
    step("cancel", cancel)
    conn.close()
