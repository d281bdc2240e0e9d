"""Export a Qwen3 / Qwen3-Embedding checkpoint to a fused ONNX graph for ONNX Runtime (GPU path).

Usage: python qwen3_onnx.py CHECKPOINT_DIR OUT_DIR [--dtype fp16|fp32] [--tokenizer-from DIR]

CHECKPOINT_DIR is a Hugging Face folder (config.json + *.safetensors, bf16/fp16/fp32), e.g. a
downloaded Qwen3-Embedding-0.6B/4B/8B. OUT_DIR becomes a sentence-transformers style folder that
AkiDB loads with `OnnxConfig::from_dir` (model.onnx [+ model.onnx_data], config.json, tokenizer
files and prompts copied from CHECKPOINT_DIR or --tokenizer-from, 1_Pooling: last token).

Why not torch.onnx.export: the traced graph of Qwen3 spends most of its GPU time outside the
matrix products (measured on the H200: ~40% GEMM, ~60% transposes, reshapes, mask building,
casts and element-wise nodes; docs/benchmarks.md). This script writes the graph directly from the
weights with ONNX Runtime's fused operators instead, the way onnxruntime-genai's model builder
writes decoder LLMs:

- attention: `com.microsoft.GroupQueryAttention` (flash / memory-efficient kernels on CUDA, RoPE
  applied inside with do_rotary and a cos/sin cache, KV heads shared without copies, causal);
- RMSNorm: `SimplifiedLayerNormalization`, fused with the residual add as
  `com.microsoft.SkipSimplifiedLayerNormalization`; Qwen3's per-head q/k norms likewise;
- SwiGLU: `com.microsoft.QuickGelu(alpha=1)` (= SiLU) times the up projection;
- q, k and v as one MatMul over their weights side by side, split after it: on the H200, 4B
  batch-1 (32 tokens, fixed shape) 3-9% faster, throughput within 1% (docs/gpu.md). Gate and up
  stay two MatMuls: joined, the split copies the widest activation of the layer, and throughput
  at 64 x 256 fell 9%;
- pooling inside the graph: the output is `sentence_embedding` [batch, hidden], the final-normed
  hidden state of each text's last attended token (AkiDB then truncates to the Matryoshka
  dimension and L2-normalises). The last layer's o_proj and MLP run on those rows only.

Padding: GroupQueryAttention takes right-padded prompts. The graph accepts either side: it reads
each row's first attended position from attention_mask and rotates the row so that its tokens
start at position 0 (a no-op for right padding). RoPE is relative, so positions 0..len-1 give the
transformers result for left padding too. The attention mask must be contiguous (one run of
ones per row), which is what every tokenizer produces.

Precision: weights and activations in --dtype; norms and softmax accumulate in fp32 inside the
kernels. ONNX Runtime's CUDA (fp16/fp32) and CPU (fp32) providers run it; TensorRT does not know
these contrib operators, so for TensorRT export with torch.onnx (scripts/gpu/export_qwen3.py).

Needs numpy and onnx only (no torch). Checked against transformers by
scripts/gpu/device_run.sh (stage `fused`) and, on the CPU, by tests/fixtures/qwen3-tiny.
"""
import argparse, json, math, os, shutil, struct, sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MS = "com.microsoft"


def read_safetensors(path):
    """Tensors of one .safetensors file as numpy arrays (bf16 widened to fp32; numpy has no bf16)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            a, b = meta["data_offsets"]
            f.seek(base + a)
            raw = f.read(b - a)
            dt = meta["dtype"]
            if dt == "BF16":
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype={"F16": np.float16, "F32": np.float32, "F64": np.float64}[dt])
            out[name] = arr.reshape(meta["shape"])
    return out


def read_checkpoint(d):
    files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    if not files:
        sys.exit(f"no .safetensors files in {d}")
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(d, f)))
    # Qwen3ForCausalLM checkpoints prefix the decoder with "model."; Qwen3Model ones do not.
    return {k[len("model."):] if k.startswith("model.") else k: v for k, v in w.items()}


class Graph:
    def __init__(self, np_dtype):
        self.nodes, self.inits, self.dt, self.n = [], [], np_dtype, 0

    def init(self, name, arr, dtype=None):
        self.inits.append(numpy_helper.from_array(np.array(arr, dtype=dtype or self.dt, order="C"), name))
        return name

    def const(self, name, values, dtype=np.int64):
        return self.init(name, np.array(values, dtype=dtype), dtype)

    def op(self, op_type, inputs, n_out=1, domain="", name=None, **attrs):
        self.n += 1
        base = name or f"{op_type.lower()}_{self.n}"
        outs = [f"{base}_out{i}" if n_out > 1 else base for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, domain=domain, **attrs))
        return outs if n_out > 1 else outs[0]


def build(cfg, w, dtype="fp16", max_positions=None):
    """The fused ONNX ModelProto of a Qwen3 decoder (`cfg`: config.json dict, `w`: weights)."""
    dt = np.float16 if dtype == "fp16" else np.float32
    T = TensorProto.FLOAT16 if dtype == "fp16" else TensorProto.FLOAT
    H, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    N, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or H // N
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    rope = cfg.get("rope_parameters") or {}
    theta = float(cfg.get("rope_theta", rope.get("rope_theta", 1e6)))
    # What this graph implements: plain RoPE over the whole head, full causal attention.
    if cfg.get("rope_scaling") or rope.get("rope_type", "default") != "default":
        sys.exit(f"unsupported RoPE scaling {cfg.get('rope_scaling') or rope}: export with torch.onnx instead")
    if cfg.get("use_sliding_window"):
        sys.exit("unsupported: sliding-window attention (use_sliding_window = true)")
    P = int(max_positions or cfg.get("max_position_embeddings", 32768))
    g = Graph(dt)

    def weight(name):
        if name not in w:
            sys.exit(f"checkpoint has no tensor {name}")
        return w[name]

    def linear(x, *prefixes):
        """x times the projections `prefixes` (checkpoint names, each [out, in]): one MatMul over
        their weights side by side, split into one output per projection."""
        name = "+".join(prefixes)
        wt = np.concatenate([weight(p + ".weight").T for p in prefixes], axis=1)
        y = g.op("MatMul", [x, g.init(name + ".weight.T", wt)])
        has_bias = [p + ".bias" in w for p in prefixes]
        if any(has_bias):
            if not all(has_bias):
                sys.exit(f"some of {prefixes} have a bias and some not: not supported")
            y = g.op("Add", [y, g.init(name + ".bias", np.concatenate([w[p + ".bias"] for p in prefixes]))])
        if len(prefixes) == 1:
            return y
        sizes = [w[p + ".weight"].shape[0] for p in prefixes]
        return g.op("Split", [y, g.const(name + ".split", sizes)], n_out=len(prefixes), axis=-1)

    def rms(x, wname):
        return g.op("SimplifiedLayerNormalization", [x, g.init(wname, weight(wname))], axis=-1, epsilon=eps,
                    stash_type=1)

    def skip_rms(x, skip, wname):
        """RMSNorm(x + skip) and x + skip."""
        out, _, _, s = g.op("SkipSimplifiedLayerNormalization", [x, skip, g.init(wname, weight(wname))], n_out=4,
                            domain=MS, epsilon=eps)
        return out, s

    # Rows rotated so that each text starts at position 0 (see the module doc), lengths, and
    # GroupQueryAttention's sequence inputs.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    lens_f = g.op("Max", [g.op("ReduceSum", [mask_f, g.const("axis1", [1])], keepdims=0),
                          g.const("one_f", 1.0, np.float32)])
    start = g.op("ArgMax", [mask_f], axis=1, keepdims=1)  # [B,1] first attended position
    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const("one_i", 1)], axis=0)  # scalar S
    # Iotas by CumSum over ones (Range on shape values trips ONNX shape inference once the
    # shape is fixed, as in the fixed-shape session).
    ones = g.op("ConstantOfShape", [shape], value=helper.make_tensor("one", TensorProto.INT64, [1], [1]))
    pos = g.op("Sub", [g.op("CumSum", [ones, g.const("one_ax", 1)]), g.const("one_s", 1)])  # [B,S] 0..S-1
    idx = g.op("Add", [pos, start])
    idx = g.op("Where", [g.op("Less", [idx, seq]), idx, g.op("Sub", [idx, seq])])
    ids = g.op("GatherElements", ["input_ids", idx], axis=1)
    last = g.op("Cast", [g.op("Sub", [lens_f, g.const("one_f2", 1.0, np.float32)])], to=TensorProto.INT64)  # [B]
    seqlens_k = g.op("Cast", [last], to=TensorProto.INT32)
    total = g.op("Cast", [seq], to=TensorProto.INT32)
    # Row of each text's last token in the flattened [B*S, ...] states: b*S + last.
    first_col = g.op("Gather", [pos, g.const("zero_i", 0)], axis=1)  # [B] zeros
    batch_iota = g.op("Sub", [g.op("CumSum", [g.op("Add", [first_col, g.const("one_b", 1)]), g.const("zero_ax", 0)]),
                              g.const("one_b2", 1)])  # [B] 0..B-1
    rows = g.op("Add", [g.op("Mul", [batch_iota, seq]), last])

    inv = 1.0 / (theta ** (np.arange(0, D, 2, dtype=np.float64) / D))
    ang = np.outer(np.arange(P, dtype=np.float64), inv)
    cos = g.init("cos_cache", np.cos(ang))
    sin = g.init("sin_cache", np.sin(ang))

    x = g.op("Gather", [g.init("embed_tokens.weight", weight("embed_tokens.weight")), ids], axis=0)
    normed = rms(x, "layers.0.input_layernorm.weight")
    h = x
    out = None
    for i in range(L):
        p = f"layers.{i}"
        q, k, v = linear(normed, f"{p}.self_attn.q_proj", f"{p}.self_attn.k_proj", f"{p}.self_attn.v_proj")
        heads = g.const(f"{p}.heads_shape", [0, 0, -1, D])
        flat = g.const(f"{p}.flat_shape", [0, 0, -1])
        if f"{p}.self_attn.q_norm.weight" in w:  # Qwen3: RMSNorm per head on q and k, before RoPE
            q = g.op("Reshape", [rms(g.op("Reshape", [q, heads]), f"{p}.self_attn.q_norm.weight"), flat])
            k = g.op("Reshape", [rms(g.op("Reshape", [k, heads]), f"{p}.self_attn.k_norm.weight"), flat])
        attn, _, _ = g.op("GroupQueryAttention", [q, k, v, "", "", seqlens_k, total, cos, sin], n_out=3, domain=MS,
                          num_heads=N, kv_num_heads=KV, do_rotary=1, rotary_interleaved=0, scale=1.0 / math.sqrt(D))
        if i == L - 1:  # only the pooled rows matter from here on
            attn = g.op("Gather", [g.op("Reshape", [attn, g.const("rows_attn", [-1, N * D])]), rows], axis=0)
            h = g.op("Gather", [g.op("Reshape", [h, g.const("rows_h", [-1, H])]), rows], axis=0)
        o = linear(attn, f"{p}.self_attn.o_proj")
        normed, h = skip_rms(o, h, f"{p}.post_attention_layernorm.weight")
        gate, up = linear(normed, f"{p}.mlp.gate_proj"), linear(normed, f"{p}.mlp.up_proj")
        m = linear(g.op("Mul", [g.op("QuickGelu", [gate], domain=MS, alpha=1.0), up]), f"{p}.mlp.down_proj")
        nxt = f"layers.{i + 1}.input_layernorm.weight" if i + 1 < L else "norm.weight"
        normed, h = skip_rms(m, h, nxt)
    g.nodes.append(helper.make_node("Identity", [normed], ["sentence_embedding"], name="output"))

    graph = helper.make_graph(
        g.nodes, "qwen3_fused",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("sentence_embedding", T, ["batch", H])],
        g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                              producer_name="akidb scripts/qwen3_onnx.py")
    model.ir_version = 8
    helper.set_model_props(model, {"akidb.export": "qwen3-fused", "akidb.pooling": "last_token", "akidb.max_positions": str(P)})
    return model


def save(model, out):
    """model.onnx, with the weights in model.onnx_data when over protobuf's 2 GB."""
    path = os.path.join(out, "model.onnx")
    for f in (path, path + "_data"):
        if os.path.exists(f):
            os.remove(f)
    big = sum(t.ByteSize() for t in model.graph.initializer) > (1 << 31) - (1 << 26)
    onnx.save_model(model, path, save_as_external_data=big, all_tensors_to_one_file=True,
                    location="model.onnx_data", size_threshold=1024)
    return path


def write_folder(out, cfg, tokenizer_from):
    """The sentence-transformers style files around model.onnx."""
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump({"word_embedding_dimension": cfg["hidden_size"], "pooling_mode_lasttoken": True, "include_prompt": True},
              open(os.path.join(out, "1_Pooling", "config.json"), "w"), indent=2)
    for f in ("tokenizer.json", "tokenizer_config.json", "config_sentence_transformers.json", "akidb.json"):
        src = os.path.join(tokenizer_from, f)
        if os.path.exists(src) and os.path.abspath(src) != os.path.abspath(os.path.join(out, f)):
            shutil.copy(src, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint"); ap.add_argument("out")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"])
    ap.add_argument("--tokenizer-from", help="folder with tokenizer.json etc. (default: the checkpoint)")
    ap.add_argument("--max-positions", type=int, help="RoPE cache length (default: max_position_embeddings)")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.checkpoint, "config.json")))
    os.makedirs(a.out, exist_ok=True)
    model = build(cfg, read_checkpoint(a.checkpoint), a.dtype, a.max_positions)
    path = save(model, a.out)
    write_folder(a.out, cfg, a.tokenizer_from or a.checkpoint)
    print(json.dumps({"exported": path, "dtype": a.dtype, "layers": cfg["num_hidden_layers"], "nodes": len(model.graph.node)}))


if __name__ == "__main__":
    main()
