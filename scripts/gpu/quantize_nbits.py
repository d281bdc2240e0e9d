"""Weight-only int4/int8 copy of an ONNX model folder: every MatMul with a constant weight becomes
ONNX Runtime's `com.microsoft` `MatMulNBits` (ONNX Runtime's own quantizer, blockwise, with zero
points unless --symmetric). The other files of the folder are copied as they are.
Usage: python3 quantize_nbits.py SRC DST [--bits 4|8] [--block 128] [--symmetric]"""
import argparse
import collections
import json
import logging
import os
import shutil
import time

import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import (
    DefaultWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
)

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--bits", type=int, choices=(4, 8), default=4)
ap.add_argument("--block", type=int, default=128)
ap.add_argument("--symmetric", action="store_true")
a = ap.parse_args()
for name in ("", "onnxruntime", "onnxruntime.quantization", "onnxruntime.quantization.matmul_nbits_quantizer"):
    logging.getLogger(name).setLevel(logging.WARNING)
t = time.time()
shutil.copytree(a.src, a.dst, ignore=shutil.ignore_patterns("model.onnx", "model.onnx_data"))
model = onnx.load(os.path.join(a.src, "model.onnx"))
cfg = DefaultWeightOnlyQuantConfig(block_size=a.block, is_symmetric=a.symmetric, bits=a.bits)
q = MatMulNBitsQuantizer(model, bits=a.bits, block_size=a.block, is_symmetric=a.symmetric,
                         algo_config=cfg)
q.process()
out = os.path.join(a.dst, "model.onnx")
q.model.save_model_to_file(out, use_external_data_format=True)
ops = collections.Counter(n.op_type for n in q.model.model.graph.node)
size = sum(os.path.getsize(os.path.join(a.dst, f)) for f in os.listdir(a.dst) if f.startswith("model"))
print(json.dumps({"quantized": a.dst, "bits": a.bits, "block": a.block, "symmetric": a.symmetric,
                  "MatMulNBits": ops.get("MatMulNBits", 0), "MatMul": ops.get("MatMul", 0),
                  "model_bytes": size, "seconds": round(time.time() - t, 1)}))
