#!/usr/bin/env bash
# Captures the statements real clients send to PostgreSQL 15 (psql
# meta-commands, pgjdbc DatabaseMetaData, psycopg2, SQLAlchemy 1.4's
# Inspector, node-postgres, pgx) and writes them, each distinct statement
# once per client, to pgwire/pgcatalog/testdata/client_queries.sql.
#
#   bash testdata/clients/capture/capture.sh
#
# Needs what scripts/test-deps.sh installs. Starts a throwaway cluster
# (log_statement=all) on port 5544 under /tmp and stops it at the end.
# Each client marks its steps with SELECT 'marker: <step>' (not written).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
B="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
if psql -h 127.0.0.1 -p 5544 -U postgres -X -qc 'select 1' >/dev/null 2>&1; then
  echo "capture: something already listens on 127.0.0.1:5544" >&2; exit 1
fi
D="$(mktemp -d /tmp/spate-capture-XXXXXX)"
W=()
if [ "$(id -u)" = 0 ]; then chown nobody "$D"; W=(setpriv --reuid=nobody --regid=nogroup --clear-groups --); fi
(cd "$D" && "${W[@]}" "$B/initdb" -D "$D/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >/dev/null)
(cd "$D" && exec "${W[@]}" "$B/postgres" -D "$D/data" -k "$D" -p 5544 -c listen_addresses=127.0.0.1 \
  -c log_statement=all -c log_timezone=UTC -c log_destination=stderr -c fsync=off -c "log_line_prefix=%m [%p] %a: " >"$D/log.txt" 2>&1) &
pgpid=$!
trap 'kill $pgpid 2>/dev/null; wait $pgpid 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 50); do psql -h 127.0.0.1 -p 5544 -U postgres -X -qc 'select 1' >/dev/null 2>&1 && break; sleep 0.2; done
psql -h 127.0.0.1 -p 5544 -U postgres -X -q -c 'CREATE TABLE t (x int, y text)' -c 'CREATE VIEW v AS SELECT x FROM t'
printf '5\tq\n' >"$D/in.tsv"

cd "$D"
psql -h 127.0.0.1 -p 5544 -U postgres -X -qc "SELECT 'capture-start'" >/dev/null
for c in '\d' '\dt' '\dv' '\dm' '\d t' '\d v' '\d+ t' '\d+ v' '\dt+' '\dm+' '\l' '\dn' '\du' '\df' '\dx' '\x' '\copy t to stdout'; do
  PGAPPNAME="psql $c" psql -h 127.0.0.1 -p 5544 -U postgres -X -c "$c" -c 'select 1' >/dev/null 2>&1
done
PGAPPNAME='psql FETCH_COUNT=2' psql -h 127.0.0.1 -p 5544 -U postgres -X -v FETCH_COUNT=2 -c 'SELECT * FROM t' >/dev/null
PGAPPNAME='psql \copy t from file' psql -h 127.0.0.1 -p 5544 -U postgres -X -c "\\copy t from $D/in.tsv" >/dev/null
javac -d "$D" -cp /usr/share/java/postgresql.jar "$here/Cap.java"
java -cp "/usr/share/java/postgresql.jar:$D" Cap
/usr/bin/python3 "$here/cap_psycopg2.py"
/usr/bin/python3 "$here/cap_sqla.py" >/dev/null
NODE_PATH="${SPATE_NPM_DIR:-$(go env GOCACHE)/spate-npm}/node_modules" node "$here/cap_node.js"
# pgx: a throwaway package inside the module, removed at once.
pkg="$root/internal/zz_capture_$$"
mkdir -p "$pkg" && cp "$here/pgx_cap.go.txt" "$pkg/cap_test.go"
(cd "$root" && go test -count=1 "./internal/$(basename "$pkg")/" >/dev/null) || true
rm -rf "$pkg"
sleep 0.5
/usr/bin/python3 "$here/parse_log.py" "$D/log.txt" "$root/pgwire/pgcatalog/testdata/client_queries.sql"
