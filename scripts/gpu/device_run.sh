#!/usr/bin/env bash
# Runs on the H200 machine (see ../../../shared/gpu/README.md and docs/gpu.md), from the repo root,
# after the ONNX Runtime GPU parts were moved to /root/ortgpu (three from stage-ort-gpu.sh, or
# four from scripts/gpu/resplit.sh when the tree and a part exceed a call). Carried: .gpu/p4 (ORT core +
# assemble.sh), .gpu/bin (stripped release binaries), .gpu/peer (the torch peer script).
# Usage: bash scripts/gpu/device_run.sh STAGE...   with STAGE = check | small | large | profile | fp16
#        | fused-small | fused-large | fused-profile | peer | fp8 | fp8-large | server
#        | precision-small | precision-large | projections-ab | nbits-large | nbits-small
set -uo pipefail
stages=${*:-check}
out=${OUT:-/tmp/out}; mkdir -p "$out"
# Parts re-split by scripts/gpu/resplit.sh (qpart.00..03): assemble them here; assemble.sh
# then finds the library in place.
if ls /root/ortgpu/qpart.* >/dev/null 2>&1 && [ ! -f /root/ortgpu/libonnxruntime_providers_cuda.so ]; then
  cat /root/ortgpu/qpart.* | xz -d -T0 > /root/ortgpu/libonnxruntime_providers_cuda.so
fi
eval "$(bash .gpu/p4/assemble.sh)"
export PATH=/opt/torch/.venv/bin:$PATH PYTHONUNBUFFERED=1
B=.gpu/bin/gpu_bench
log() { echo "== $*" | tee -a "$out/log.txt"; }
run() { log "$*"; "$@" 2>&1 | tee -a "$out/log.txt"; }
for stage in $stages; do
case "$stage" in
  check)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee -a "$out/log.txt"
    run $B --model-dir tests/fixtures/qwen3-tiny --provider cuda --reference tests/fixtures/qwen3-tiny/reference.json
    run $B --model-dir tests/fixtures/qwen3-tiny --provider cuda --fixed-single 24 --reference tests/fixtures/qwen3-tiny/reference.json
    run $B --model-dir tests/fixtures/qwen3-tiny --provider cpu --reference tests/fixtures/qwen3-tiny/reference.json
    # The fused export of the same weights (scripts/qwen3_onnx.py). The committed fixture is
    # fp32; GroupQueryAttention's CUDA kernels are fp16/bf16, so CUDA runs it with those nodes
    # on the CPU (correct, not capturable as a CUDA graph). The fp16 build runs wholly on CUDA.
    run $B --model-dir tests/fixtures/qwen3-tiny-fused --provider cuda --reference tests/fixtures/qwen3-tiny/reference.json
    run python3 tests/fixtures/qwen3-tiny-fused/make_fixture.py --dtype fp16 --out /tmp/tiny-fused-fp16
    run $B --model-dir /tmp/tiny-fused-fp16 --provider cuda --reference tests/fixtures/qwen3-tiny/reference.json
    run $B --model-dir /tmp/tiny-fused-fp16 --provider cuda --fixed-single 24 --reference tests/fixtures/qwen3-tiny/reference.json
    # MiniLM travels in two halves (86 MB > one call), moved to /root/minilm by earlier calls.
    if [ -f /root/minilm/model.part.00 ] && [ -f /root/minilm/model.part.01 ]; then
      cat /root/minilm/model.part.00 /root/minilm/model.part.01 > /root/minilm/model.onnx
      run $B --model-dir /root/minilm --provider cuda --reference tests/fixtures/minilm/reference.json
    fi
    ;;
  small)
    run python3 scripts/gpu/export_qwen3.py 0.6b /tmp/q06-fp16 --dtype fp16
    run $B --model-dir /tmp/q06-fp16 --provider cuda --bench --runs 200
    run $B --model-dir /tmp/q06-fp16 --provider cuda --bench --runs 200 --fixed-single 32
    run python3 .gpu/peer/torch_qwen3_bench.py
    ;;
  large)
    run python3 scripts/gpu/export_qwen3.py 4b /tmp/q4-fp16 --dtype fp16
    run $B --model-dir /tmp/q4-fp16 --provider cuda --bench --runs 200 --fixed-single 32
    run $B --model-dir /tmp/q4-fp16 --provider cuda --bench --runs 200
    run python3 .gpu/peer/torch_qwen3_bench.py
    rm -rf /tmp/q4-fp16
    ;;
  profile)
    # Where the time goes at 64 x 256 (throughput target): ONNX Runtime's per-op kernel times.
    mkdir -p /tmp/prof
    [ -d /tmp/q06-fp16 ] || run python3 scripts/gpu/export_qwen3.py 0.6b /tmp/q06-fp16 --dtype fp16
    run $B --model-dir /tmp/q06-fp16 --provider cuda --profile /tmp/prof/q06
    run python3 scripts/gpu/profile_summary.py "$(ls /tmp/prof/q06_*.json | head -n 1)" 25
    [ -d /tmp/q4-fp16 ] || run python3 scripts/gpu/export_qwen3.py 4b /tmp/q4-fp16 --dtype fp16
    run $B --model-dir /tmp/q4-fp16 --provider cuda --profile /tmp/prof/q4
    run python3 scripts/gpu/profile_summary.py "$(ls /tmp/prof/q4_*.json | head -n 1)" 25
    ;;
  fp16)
    run python3 scripts/gpu/export_qwen3.py 0.6b /tmp/q06-fp32 --dtype fp32
    [ -d /tmp/q06-fp16 ] || run python3 scripts/gpu/export_qwen3.py 0.6b /tmp/q06-fp16 --dtype fp16
    run python3 scripts/gpu/compare_fp16.py /tmp/q06-fp32 /tmp/q06-fp16
    ;;
  fused-small|fused-large)
    # The fused graph (scripts/qwen3_onnx.py) of the same random weights, checked against
    # transformers fp32 on the fixture texts, then benched; the traced export's figures come
    # from the small/large stages.
    size=0.6b; [ "$stage" = fused-large ] && size=4b
    d=/tmp/fused-$size
    run python3 scripts/gpu/export_qwen3.py $size $d --dtype fp16 --graph fused --reference
    run $B --model-dir $d --provider cuda --reference $d/reference.json
    run $B --model-dir $d --provider cuda --bench --runs 200 --fixed-single 32
    run $B --model-dir $d --provider cuda --bench --runs 200
    ;;
  fused-profile)
    mkdir -p /tmp/prof
    run $B --model-dir /tmp/fused-0.6b --provider cuda --profile /tmp/prof/f06
    run python3 scripts/gpu/profile_summary.py "$(ls /tmp/prof/f06_*.json | head -n 1)" 25
    ;;
  peer)
    run python3 .gpu/peer/torch_qwen3_bench.py
    ;;
  server)
    # akidb-server with a Qwen3-0.6B-shaped model (fused fp16 export, random weights) on CUDA,
    # loaded by the load example on the same host over loopback (.gpu/bin/akidb-server and
    # .gpu/bin/load: stripped release builds).
    d=/tmp/fused-0.6b
    [ -d $d ] || run python3 scripts/gpu/export_qwen3.py 0.6b $d --dtype fp16 --graph fused
    rm -rf /tmp/srv-db; key=device-bench-key-0123456789
    cat > /tmp/srv.toml <<TOML
listen = "127.0.0.1:0"
data_dir = "/tmp/srv-db"
[models.qwen06]
dir = "$d"
provider = "cuda"
queue = 256
[[auth.keys]]
key = "$key"
scope = "write"
TOML
    .gpu/bin/akidb-server --config /tmp/srv.toml > /tmp/srv.out 2> "$out/server.err" &
    srv=$!
    for _ in $(seq 1 300); do grep -q "listening on" /tmp/srv.out && break; sleep 0.2; done
    addr=$(sed -n 's/^listening on //p' /tmp/srv.out)
    run .gpu/bin/load --url "http://$addr" --key $key --model qwen06 --seconds 10
    run .gpu/bin/load --url "http://$addr" --key $key --model qwen06 --seconds 10 --mode hybrid \
      --levels 8,32
    kill -TERM $srv; wait $srv; log "server exit $?"
    ;;
  precision-small|precision-large)
    # fp16, weight-only int8 (block 128) and int4 (block 32), and for 0.6B FP8 E4M3, of the same
    # random weights: worst cosine against transformers fp32; this process's device memory after
    # load without and with the fixed-shape session (which reads the same copy of the weights);
    # batch-1 latency through the fixed-shape and the dynamic session; throughput. The
    # transformers fp16 peer runs in the same call.
    size=0.6b; [ "$stage" = precision-large ] && size=4b
    d=/tmp/fused-$size
    [ -d $d ] || run python3 scripts/gpu/export_qwen3.py $size $d --dtype fp16 --graph fused --reference
    run python3 scripts/gpu/quantize_nbits.py $d /tmp/int8-$size --bits 8 --block 128
    run python3 scripts/gpu/quantize_nbits.py $d /tmp/int4-$size --bits 4 --block 32
    models="$d /tmp/int8-$size /tmp/int4-$size"
    if [ "$stage" = precision-small ]; then
      run python3 scripts/gpu/quantize_fp8.py $d /tmp/fp8-$size
      models="$models /tmp/fp8-$size"
    fi
    for m in $models; do
      run $B --model-dir $m --provider cuda --reference $d/reference.json
      run $B --model-dir $m --provider cuda --bench --runs 200 --fixed-single 32
      run $B --model-dir $m --provider cuda --bench --runs 200
    done
    run python3 .gpu/peer/torch_qwen3_bench.py
    ;;
  projections-ab)
    # 4B fp16: the exporter as it is (q/k/v as one MatMul) against its previous layout (separate
    # MatMuls: `git show 8a0e710:scripts/qwen3_onnx.py > .gpu/old/qwen3_onnx.py`, carried), same
    # random weights, alternating, fixed-shape and dynamic session.
    d=/tmp/fused-4b; o=/tmp/separate-4b; old=/tmp/oldrepo
    [ -d $d ] || run python3 scripts/gpu/export_qwen3.py 4b $d --dtype fp16 --graph fused --reference
    mkdir -p $old/scripts/gpu && cp scripts/gpu/export_qwen3.py $old/scripts/gpu/ && cp .gpu/old/qwen3_onnx.py $old/scripts/
    ln -sfn "$PWD/tests" $old/tests
    [ -d $o ] || run python3 $old/scripts/gpu/export_qwen3.py 4b $o --dtype fp16 --graph fused
    for m in $d $o $d $o; do
      run $B --model-dir $m --provider cuda --bench --runs 200 --fixed-single 32
      run $B --model-dir $m --provider cuda --bench --runs 100
    done
    run $B --model-dir $d --provider cuda --reference $d/reference.json
    ;;
  nbits-large|nbits-small)
    # Weight-only int8 and int4, block 32, no zero points: the layout ONNX Runtime's fpA_intB
    # kernels take, measured with them on (ORT_FPA_INTB_GEMM=1, ONNX Runtime's own switch; off by
    # default) and, once for int8, off. Device memory with the tiny model loaded first
    # (gpu_mib_model excludes the CUDA context).
    size=0.6b; [ "$stage" = nbits-large ] && size=4b
    d=/tmp/fused-$size; base="--baseline-model tests/fixtures/qwen3-tiny"
    [ -d $d ] || run python3 scripts/gpu/export_qwen3.py $size $d --dtype fp16 --graph fused --reference
    run python3 scripts/gpu/quantize_nbits.py $d /tmp/s8-$size --bits 8 --block 32 --symmetric
    run python3 scripts/gpu/quantize_nbits.py $d /tmp/s4-$size --bits 4 --block 32 --symmetric
    run $B --model-dir $d --provider cuda $base --bench --runs 200 --fixed-single 32
    export ORT_FPA_INTB_GEMM=1
    for m in /tmp/s8-$size /tmp/s4-$size; do
      run $B --model-dir $m --provider cuda $base --reference $d/reference.json
      run $B --model-dir $m --provider cuda $base --bench --runs 200 --fixed-single 32
      run $B --model-dir $m --provider cuda $base --bench --runs 200
    done
    log "ORT_FPA_INTB_GEMM=0 (the dequantize + GEMM path)"
    ORT_FPA_INTB_GEMM=0 run $B --model-dir /tmp/s8-$size --provider cuda $base --bench --runs 200
    unset ORT_FPA_INTB_GEMM
    ;;
  fp8|fp8-large)
    # FP8 E4M3 copies (scripts/gpu/quantize_fp8.py: GemmFloat8, per-channel weight scales,
    # per-tensor activation scales at run time), checked against transformers fp32 of the same
    # weights; the fp16 graph benched in the same call as the peer.
    if [ "$stage" = fp8 ]; then
      run python3 tests/fixtures/qwen3-tiny-fused/make_fixture.py --dtype fp16 --out /tmp/tiny-fused-fp16
      run python3 scripts/gpu/quantize_fp8.py /tmp/tiny-fused-fp16 /tmp/tiny-fp8
      run $B --model-dir /tmp/tiny-fp8 --provider cuda --reference tests/fixtures/qwen3-tiny/reference.json
      size=0.6b
    else
      size=4b
    fi
    d=/tmp/fused-$size
    [ -d $d ] || run python3 scripts/gpu/export_qwen3.py $size $d --dtype fp16 --graph fused --reference
    run python3 scripts/gpu/quantize_fp8.py $d /tmp/fp8-$size
    run $B --model-dir /tmp/fp8-$size --provider cuda --reference $d/reference.json
    run $B --model-dir /tmp/fp8-$size --provider cuda --bench --runs 200
    run $B --model-dir $d --provider cuda --bench --runs 200
    ;;
esac
done
