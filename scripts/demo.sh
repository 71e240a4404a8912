#!/usr/bin/env bash
# The demo: sets up Postgres+pgvector and the model (scripts/setup.sh), builds Lethe,
# creates a tenant, starts the service, runs examples/demo.rs (erase one person and print
# the verified log entry), then stops the service. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/setup.sh)"

echo "==> building Lethe (first build takes a while on two cores)" >&2
cargo build --quiet --bin lethe --example demo

port="${LETHE_DEMO_PORT:-50051}"
export LETHE_APPLICATION__PORT="$port"
keys=$(target/debug/lethe tenant create "demo-$(date +%Y%m%d-%H%M%S)-$$" --format env)
set -a; eval "$keys"; set +a

echo "==> starting Lethe on 127.0.0.1:$port (log: .lethe/lethe.log)" >&2
target/debug/lethe serve > .lethe/lethe.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# The auditor's pin: the service key, read from the key file (created on first start).
for _ in $(seq 1 100); do [ -s .lethe/signing_key.pem ] && break; sleep 0.1; done
LETHE_SIGNING_PUBKEY=$(target/debug/lethe signing-key | cut -d' ' -f2)
export LETHE_SIGNING_PUBKEY

LETHE_URL="http://127.0.0.1:$port" target/debug/examples/demo
