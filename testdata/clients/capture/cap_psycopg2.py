# Capture client for capture.sh: the statements psycopg2 sends (see parse_log.py).
import psycopg2, io
c = psycopg2.connect("host=127.0.0.1 port=5544 user=postgres dbname=postgres application_name=psycopg2")
def mark(s):
    m = psycopg2.connect("host=127.0.0.1 port=5544 user=postgres dbname=postgres application_name=psycopg2"); m.autocommit=True
    m.cursor().execute("SELECT 'marker: " + s.replace("'", "''") + "'"); m.close()
mark("execute + cursor.description")
cur = c.cursor()
cur.execute("SELECT x, y FROM t WHERE x > %s", (0,))
cur.description
cur.fetchall()
mark("copy_expert")
cur.copy_expert("COPY t FROM STDIN (FORMAT csv)", io.StringIO("7,z\n"))
cur.copy_expert("COPY t TO STDOUT (FORMAT csv)", io.StringIO())
c.commit()
mark("named cursor")
n = c.cursor("c1")
n.execute("SELECT x FROM t")
n.fetchmany(10)
n.close()
c.close()
