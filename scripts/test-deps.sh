#!/usr/bin/env bash
# Installs the clients and servers the tests use for real, when missing.
# Under CI=true anything still missing is an error, never a silent skip.
set -euo pipefail

need=()
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
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

missing=()
command -v versitygw >/dev/null 2>&1 || [ -x "$gobin/versitygw" ] || missing+=(versitygw)
command -v psql >/dev/null 2>&1 || missing+=(psql)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(initdb)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: missing ${missing[*]} (apt: postgresql-client, postgresql; versitygw: go install github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
exit 0
