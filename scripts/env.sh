# Sourced by the scripts: environment for running AkiDB from this checkout.
_akidb_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_akidb_ort=$(ls "$_akidb_root"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -n 1)
if [ -n "$_akidb_ort" ] && [ -z "${ORT_DYLIB_PATH:-}" ]; then
  export ORT_DYLIB_PATH="$_akidb_ort"
fi
unset _akidb_root _akidb_ort
