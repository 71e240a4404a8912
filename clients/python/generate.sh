#!/usr/bin/env bash
# Regenerates src/lethe/v1/*_pb2*.py(i) from the repository's proto/ (run after any proto change;
# tests/test_stubs.py fails until you do). Uses grpcio-tools 1.62.3 on purpose: its code (protobuf
# 4.25 gencode) loads on every protobuf runtime from 4.25 to 7.x, so the package can accept
# `protobuf>=4.25,<8`; newer grpcio-tools would force users onto the newest protobuf.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.lethe/venv-protoc"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install -q --only-binary=:all: grpcio-tools==1.62.3 \
    || { rm -rf "$venv"; echo "grpcio-tools 1.62.3 has wheels for Python 3.8-3.12: set PYTHON=python3.12" >&2; exit 1; }
fi
out="$here/src"
rm -f "$out"/lethe/v1/*_pb2*.py "$out"/lethe/v1/*_pb2*.pyi
"$venv/bin/python" -m grpc_tools.protoc -I "$repo/proto" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$repo"/proto/lethe/v1/*.proto
echo "regenerated $(ls "$out"/lethe/v1/*_pb2*.py* | wc -l) files in $out/lethe/v1" >&2
