#!/usr/bin/env bash
# Installs the clients and servers the tests use for real, when missing.
# Under CI=true anything still missing is an error, never a silent skip.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# The real clients of cmd/spate/clients_test.go. The Python modules must be
# importable by the system python3 (a pyenv shim earlier in PATH may not
# see apt's packages).
PY=/usr/bin/python3
[ -x "$PY" ] || PY="$(command -v python3 || echo python3)"
"$PY" -c 'import psycopg2' >/dev/null 2>&1 || need+=(python3-psycopg2)
"$PY" -c 'import sqlalchemy' >/dev/null 2>&1 || need+=(python3-sqlalchemy)
[ -f /usr/share/java/postgresql.jar ] || need+=(libpostgresql-jdbc-java)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)

if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
      echo "test-deps: apt-get install ${need[*]} failed" >&2
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
      echo "test-deps: apt-get install ${need[*]} failed" >&2
  fi
fi

# versitygw: a real S3-compatible server for the checkpoint store's tests.
VERSITYGW_VERSION=v1.8.0
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
  echo "test-deps: go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION (about a minute, once)"
  go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" || true
fi

# node-postgres, outside the repository: $SPATE_NPM_DIR, by default
# $(go env GOCACHE)/spate-npm (where cmd/spate/clients_test.go looks).
NODE_PG_VERSION=8.23.1
npmdir="${SPATE_NPM_DIR:-$(go env GOCACHE)/spate-npm}"
if [ ! -f "$npmdir/node_modules/pg/package.json" ] && command -v npm >/dev/null 2>&1; then
  echo "test-deps: npm install pg@$NODE_PG_VERSION into $npmdir"
  mkdir -p "$npmdir"
  npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error "pg@$NODE_PG_VERSION" >/dev/null || true
fi

missing=()
command -v versitygw >/dev/null 2>&1 || [ -x "$gobin/versitygw" ] || missing+=(versitygw)
command -v psql >/dev/null 2>&1 || missing+=(psql)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(initdb)
fi
"$PY" -c 'import psycopg2' >/dev/null 2>&1 || missing+=(psycopg2)
"$PY" -c 'import sqlalchemy' >/dev/null 2>&1 || missing+=(sqlalchemy)
[ -f /usr/share/java/postgresql.jar ] || missing+=(pgjdbc)
command -v javac >/dev/null 2>&1 || missing+=(javac)
command -v node >/dev/null 2>&1 || missing+=(node)
[ -f "$npmdir/node_modules/pg/package.json" ] || missing+=(node-pg)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: missing ${missing[*]} (apt: postgresql-client, postgresql, python3-psycopg2, python3-sqlalchemy, libpostgresql-jdbc-java, default-jdk-headless, nodejs, npm; npm install --prefix $npmdir pg@$NODE_PG_VERSION; versitygw: go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
exit 0
