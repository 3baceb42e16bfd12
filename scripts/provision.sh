#!/usr/bin/env bash
# Makes sure what the integration tests need is there: Erlang/OTP (erl, erlc, epmd, ei headers), Elixir, and a
# PostgreSQL server answering at TS_CNODE_TEST_PGURL (default postgres://postgres@127.0.0.1:5432/test).
# Installs from Debian's packages when run as root; otherwise says what is missing and stops.
set -euo pipefail
say() { echo "[ts-cnode provision] $*" >&2; }
as_root() { [ "$(id -u)" = 0 ]; }
apt_updated=""
apt_install() {
  if ! as_root; then say "cannot install $* without root: install it yourself (apt-get install $*)"; exit 1; fi
  if [ -z "$apt_updated" ]; then say "apt-get update"; DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; apt_updated=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

if ! command -v erl >/dev/null || ! command -v erlc >/dev/null || ! command -v epmd >/dev/null; then
  say "Erlang/OTP is missing: installing it from the OS packages"
  apt_install erlang-nox erlang-dev
fi

if ! ls /usr/lib/erlang/lib/erl_interface-*/include/ei.h >/dev/null 2>&1; then
  say "erl_interface headers (ei.h) are missing: installing erlang-dev (the benchmark's C-node needs them)"
  apt_install erlang-dev
fi

if ! command -v elixir >/dev/null; then
  if as_root; then
    say "Elixir is missing: installing it from the OS packages (integration/elixir.test.ts runs an Elixir client)"
    apt_install elixir
  else
    say "Elixir is missing and this is not root: integration/elixir.test.ts will be skipped (apt-get install elixir)"
  fi
fi

if ! command -v gcc >/dev/null || [ ! -f /usr/include/postgresql/libpq-fe.h ]; then
  say "gcc or libpq headers are missing: installing gcc libpq-dev (the libpq comparison test and the seed driver's C build need them)"
  apt_install gcc libpq-dev
fi

pgurl="${TS_CNODE_TEST_PGURL:-postgres://postgres@127.0.0.1:5432/test}"
if [ -n "${TS_CNODE_TEST_PGURL:-}" ]; then
  say "using the PostgreSQL at TS_CNODE_TEST_PGURL"
  exit 0
fi
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "no PostgreSQL server here: installing one from the OS packages"
    apt_install postgresql
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if as_root && ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    say "allowing trust auth for postgres on 127.0.0.1 in $hba (a test server)"
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
  fi
  say "starting PostgreSQL $ver (pg_ctlcluster $ver main start)"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || pg_ctlcluster "$ver" main start >&2
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
  pg_up || { say "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }
fi
if command -v psql >/dev/null && ! psql "postgres://postgres@127.0.0.1:5432/postgres" -tAc "select 1 from pg_database where datname='test'" 2>/dev/null | grep -q 1; then
  say "creating database test"
  psql "postgres://postgres@127.0.0.1:5432/postgres" -qc "create database test" >&2
fi
