"""FP8 (E4M3) copy of an fp16 ONNX model folder for ONNX Runtime's CUDA provider on Hopper or later.

Every MatMul with a constant 2-D weight W [K, N] becomes `com.microsoft` `GemmFloat8` (cuBLASLt) on
FP8 E4M3 operands: the weight is stored transposed ([N, K], the only FP8 layout the operator takes:
transA 0, transB 1) with one scale per output channel (amax / 448, applied to the fp16 result), and
the activation is scaled per tensor at run time (its amax / 448, the operator's scaleA) and cast to
E4M3. Other nodes and files are kept; the graph's default opset becomes at least 19 (FP8 Cast).

Usage: python3 quantize_fp8.py SRC DST   (needs numpy, onnx, and ml_dtypes or torch)
"""
import collections
import json
import os
import shutil
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

E4M3_MAX = 448.0


def to_e4m3_bytes(a):
    """Float32 array -> its FP8 E4M3 (fn) bytes, rounded to nearest even, saturated at 448."""
    a = np.clip(a, -E4M3_MAX, E4M3_MAX)
    try:
        import ml_dtypes
        return a.astype(ml_dtypes.float8_e4m3fn).tobytes()
    except ImportError:
        import torch
        return torch.from_numpy(np.ascontiguousarray(a)).to(torch.float8_e4m3fn).view(torch.uint8).numpy().tobytes()
MS = "com.microsoft"


def main(src, dst):
    t = time.time()
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.onnx", "model.onnx_data"))
    model = onnx.load(os.path.join(src, "model.onnx"))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts = {}  # shared constants, made once
    new_inits = []

    def const(name, array):
        if name not in consts:
            consts[name] = name
            new_inits.append(numpy_helper.from_array(array, name))
        return name

    nodes, converted = [], 0
    for n in g.node:
        w = inits.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) == 2 else None
        if w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT16:
            nodes.append(n)
            continue
        W = numpy_helper.to_array(w).astype(np.float32)  # [K, N]
        K, N = W.shape
        Wt = W.T  # [N, K]
        scale = np.maximum(np.abs(Wt).max(axis=1), 1e-12) / E4M3_MAX  # per output channel
        q = to_e4m3_bytes(Wt / scale[:, None])
        p = f"{n.output[0]}.fp8"
        wq = helper.make_tensor(p + ".w", TensorProto.FLOAT8E4M3FN, [N, K], q, raw=True)
        new_inits.append(wq)
        new_inits.append(numpy_helper.from_array(scale.astype(np.float16), p + ".wscale"))
        x, y = n.input[0], n.output[0]
        k2 = const(f"fp8.shape.k{K}", np.array([-1, K], np.int64))
        nodes += [
            helper.make_node("Shape", [x], [p + ".shape"]),
            helper.make_node("Reshape", [x, k2], [p + ".x2"]),
            helper.make_node("Abs", [p + ".x2"], [p + ".abs"]),
            helper.make_node("ReduceMax", [p + ".abs"], [p + ".amax"], keepdims=0),
            helper.make_node("Cast", [p + ".amax"], [p + ".amax32"], to=TensorProto.FLOAT),
            helper.make_node("Div", [p + ".amax32", const("fp8.max", np.array(E4M3_MAX, np.float32))],
                             [p + ".sx0"]),
            helper.make_node("Max", [p + ".sx0", const("fp8.eps", np.array(1e-12, np.float32))],
                             [p + ".sx"]),
            helper.make_node("Cast", [p + ".sx"], [p + ".sx16"], to=TensorProto.FLOAT16),
            helper.make_node("Div", [p + ".x2", p + ".sx16"], [p + ".xs"]),
            helper.make_node("Cast", [p + ".xs"], [p + ".xq"], to=TensorProto.FLOAT8E4M3FN),
            helper.make_node("GemmFloat8", [p + ".xq", p + ".w", "", p + ".sx", const("fp8.one", np.array(1.0, np.float32))],
                             [p + ".y2"], domain=MS, transA=0, transB=1, dtype=TensorProto.FLOAT16),
            helper.make_node("Mul", [p + ".y2", p + ".wscale"], [p + ".y2s"]),
            helper.make_node("Slice", [p + ".shape", const("fp8.zero1", np.array([0], np.int64)),
                                       const("fp8.minus1", np.array([-1], np.int64))], [p + ".lead"]),
            helper.make_node("Concat", [p + ".lead", const(f"fp8.n{N}", np.array([N], np.int64))],
                             [p + ".yshape"], axis=0),
            helper.make_node("Reshape", [p + ".y2s", p + ".yshape"], [y]),
        ]
        converted += 1
    used = {i for n in nodes for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 19:
            o.version = 19
    if not any(o.domain == MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS, 1))
    model.ir_version = max(model.ir_version, 9)
    out = os.path.join(dst, "model.onnx")
    onnx.save(model, out, save_as_external_data=True, location="model.onnx_data", size_threshold=1024)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    size = sum(os.path.getsize(os.path.join(dst, f)) for f in os.listdir(dst) if f.startswith("model"))
    print(json.dumps({"quantized": dst, "GemmFloat8": ops.get("GemmFloat8", 0), "MatMul": ops.get("MatMul", 0),
                      "converted": converted, "model_bytes": size, "seconds": round(time.time() - t, 1)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
