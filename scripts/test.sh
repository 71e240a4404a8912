#!/usr/bin/env bash
# The whole test suite against real services that this script starts itself:
# PostgreSQL 16 + pgvector (scripts/setup.sh), the embedding model, and the Qdrant
# stand-in (qdrant-standin/, Qdrant's own engine behind Qdrant's gRPC API).
# Set QDRANT_URL to test against a real Qdrant instead of the stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh)"

# Databases left by earlier test runs.
"$LETHE_PG_BIN/psql" -h 127.0.0.1 -p "${LETHE_PG_PORT:-55432}" -U postgres -d lethe -qAt \
  -c "SELECT 'DROP DATABASE \"' || datname || '\";' FROM pg_database WHERE datname LIKE 'lethe_test_%'" \
  | "$LETHE_PG_BIN/psql" -h 127.0.0.1 -p "${LETHE_PG_PORT:-55432}" -U postgres -d lethe -q >/dev/null

standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ -z "${QDRANT_URL:-}" ]; then
  echo "==> building the Qdrant stand-in (qdrant-edge; the first build takes several minutes)" >&2
  (cd qdrant-standin && cargo build --quiet --bin qdrant-standin)
  data=.lethe/qdrant-test
  rm -rf "$data"; mkdir -p "$data"
  qdrant-standin/target/debug/qdrant-standin --port 0 --data-dir "$data" > .lethe/qdrant-standin.log 2>&1 &
  standin=$!
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' .lethe/qdrant-standin.log | head -n1)
    [ -n "$port" ] && break
    kill -0 "$standin" 2>/dev/null || { cat .lethe/qdrant-standin.log >&2; exit 1; }
    sleep 0.1
  done
  [ -n "${port:-}" ] || { echo "the Qdrant stand-in did not start" >&2; exit 1; }
  export QDRANT_URL="http://127.0.0.1:$port"
  # The forensic test scans the stand-in's segment files here.
  export QDRANT_STANDIN_DATA_DIR="$PWD/$data"
  echo "==> Qdrant stand-in on $QDRANT_URL" >&2
  echo "==> stand-in's own tests" >&2
  (cd qdrant-standin && cargo test --quiet)
fi

skip=()
if [ -z "${QDRANT_STANDIN_DATA_DIR:-}" ] && [ -z "${QDRANT_STORAGE_DIR:-}" ]; then
  # A real Qdrant whose files are not readable here: the forensic scan cannot check its claim.
  echo "==> SKIPPED: guaranteed_physical_erasure_leaves_no_bytes_in_qdrant_segments (set QDRANT_STORAGE_DIR to the server's storage directory to run it)" >&2
  skip=(--skip guaranteed_physical_erasure_leaves_no_bytes_in_qdrant_segments)
fi

# The auditor's web view is tested in headless Chromium (Debian's package).
web_test=the_auditors_view_matches_get_erasure_and_verifies_certificates_in_the_browser
if ! command -v chromium >/dev/null 2>&1 && [ -z "${LETHE_CHROMIUM:-}" ]; then
  if [ "${CI:-}" = true ] && [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium for the web view's browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >&2
  else
    echo "==> SKIPPED: $web_test (no chromium: apt-get install chromium, or set LETHE_CHROMIUM)" >&2
    skip+=(--skip "$web_test")
  fi
fi

echo "==> Lethe's tests" >&2
cargo test --all-targets -- "${skip[@]}"

echo "==> benchmark at a tiny size, both backends (keeps it from rotting; timings are not tests)" >&2
# Without QDRANT_URL the benchmark starts a stand-in of its own and labels its figures as such.
env -u QDRANT_URL cargo run --quiet --example bench -- --size 2000 --runs 1 --backend both --skip embed,reindex

echo "==> Python client's tests (clients/python, against a lethe serve of their own)" >&2
venv=.lethe/venv-python
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "./clients/python[test]"
lethe_bin="${CARGO_TARGET_DIR:-target}/debug/lethe"
[ -x "$lethe_bin" ] || cargo build --quiet --bin lethe
LETHE_BIN="$(realpath "$lethe_bin")" "$venv/bin/pytest" -q -p no:cacheprovider clients/python/tests

echo "==> framework tests (tests/frameworks: LangChain and LlamaIndex stores written by their own packages, attached and erased)" >&2
# The frameworks' released packages, pinned; Qdrant stores use QDRANT_URL (the stand-in above, or a real Qdrant).
fvenv=.lethe/venv-frameworks
[ -x "$fvenv/bin/python" ] || python3 -m venv "$fvenv"
"$fvenv/bin/pip" install --quiet --disable-pip-version-check -r tests/frameworks/requirements.txt ./clients/python
LETHE_BIN="$(realpath "$lethe_bin")" "$fvenv/bin/pytest" -q -p no:cacheprovider tests/frameworks
