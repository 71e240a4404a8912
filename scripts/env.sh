# shellcheck shell=bash
# Source me: `. scripts/env.sh` — exports what Lethe, its tests and sqlx need to find the
# components that scripts/setup.sh installed. No `set -e` here: it would leak into your shell.
__lethe_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
__lethe_port="${LETHE_PG_PORT:-55432}"

export DATABASE_URL="postgres://postgres@127.0.0.1:${__lethe_port}/lethe"
export LETHE_DATABASE__URL="$DATABASE_URL"
export LETHE_EMBEDDING__MODEL_DIR="$__lethe_repo/.lethe/model"
export LETHE_EMBEDDING__ORT_DYLIB_PATH="$__lethe_repo/.lethe/ort/libonnxruntime.so.1.31.1"
export ORT_DYLIB_PATH="$LETHE_EMBEDDING__ORT_DYLIB_PATH"
export LETHE_PG_BIN="$__lethe_repo/.lethe/pg/bin"

unset __lethe_repo __lethe_port
