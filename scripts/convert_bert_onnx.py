"""Convert a sentence-transformers BERT-family folder (safetensors + tokenizer.json) to ONNX.

Usage: convert_bert_onnx.py SRC_DIR OUT_DIR

Builds the BERT encoder graph directly with `onnx.helper` from the safetensors weights, so the
set-up step needs neither torch nor a GPU (a few seconds, no downloads beyond onnx + numpy).
The graph is the standard one that `torch.onnx.export` of `BertModel` produces:
inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, [batch, seq]), output
`last_hidden_state` (float32, [batch, seq, hidden]); ONNX Runtime fuses LayerNorm/GELU/attention
at session creation. Pooling and normalisation stay outside the graph (the Rust provider reads
them from `1_Pooling/config.json`).

OUT_DIR receives model.onnx plus the folder's tokenizer and sentence-transformers configs.
Idempotent: skips the build when OUT_DIR/model.onnx was made from the same weights.
"""
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

COPY = ["tokenizer.json", "config.json", "config_sentence_transformers.json",
        "sentence_bert_config.json", "modules.json", "1_Pooling/config.json"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build(src, cfg):
    w = load_file(os.path.join(src, "model.safetensors"))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
    W = lambda k: w[prefix + k]
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd, eps = H // nh, float(cfg.get("layer_norm_eps", 1e-12))
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise SystemExit(f"unsupported activation {cfg.get('hidden_act')}")
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs=None, **kw):
        outs = outs or [f"{op}_{len(nodes)}"]
        nodes.append(helper.make_node(op, ins, outs, name=f"n{len(nodes)}_{op}", **kw))
        return outs[0]

    def linear(x, key):
        wt = init(key + ".weight_t", W(key + ".weight").T)
        b = init(key + ".bias", W(key + ".bias"))
        return node("Add", [node("MatMul", [x, wt]), b])

    def layer_norm(x, key):
        return node("LayerNormalization", [x, init(key + ".weight", W(key + ".weight")),
                                           init(key + ".bias", W(key + ".bias"))], axis=-1, epsilon=eps)

    c = lambda name, arr: init(name, np.array(arr))
    # Position embeddings: the first `seq` rows of the table.
    seq_len = node("Shape", ["input_ids"], start=1, end=2)
    pos_rows = node("Slice", [init("pos_emb", W("embeddings.position_embeddings.weight")),
                              c("c_start", np.array([0], dtype=np.int64)), seq_len,
                              c("c_axis0", np.array([0], dtype=np.int64))])
    emb = node("Add", [node("Gather", [init("word_emb", W("embeddings.word_embeddings.weight")), "input_ids"]),
                       pos_rows])
    emb = node("Add", [emb, node("Gather", [init("type_emb", W("embeddings.token_type_embeddings.weight")),
                                            "token_type_ids"])])
    x = layer_norm(emb, "embeddings.LayerNorm")
    # Additive mask [batch, 1, 1, seq]: 0 where attended, a large negative where padded.
    maskf = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    ext = node("Mul", [node("Sub", [c("c_onef", np.float32(1.0)), maskf]), c("c_neg", np.float32(-3.4028e38))])
    ext = node("Unsqueeze", [ext, c("c_axes12", np.array([1, 2], dtype=np.int64))])
    split_shape = c("c_split", np.array([0, 0, nh, hd], dtype=np.int64))
    merge_shape = c("c_merge", np.array([0, 0, H], dtype=np.int64))
    scale = c("c_scale", np.float32(1.0 / np.sqrt(hd)))
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        heads = lambda t, perm: node("Transpose", [node("Reshape", [t, split_shape])], perm=perm)
        q = heads(linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = heads(linear(x, p + "attention.self.key"), [0, 2, 3, 1])
        v = heads(linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), ext])
        ctx = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        x = layer_norm(node("Add", [linear(ctx, p + "attention.output.dense"), x]), p + "attention.output.LayerNorm")
        h = linear(x, p + "intermediate.dense")
        gelu = node("Mul", [node("Mul", [h, c(f"c_half{i}", np.float32(0.5))]),
                            node("Add", [node("Erf", [node("Div", [h, c(f"c_sqrt2{i}", np.float32(np.sqrt(2.0)))])]),
                                         c(f"c_onef{i}", np.float32(1.0))])])
        out = linear(gelu, p + "output.dense")
        x = layer_norm(node("Add", [out, x]), p + "output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        nodes, "bert_encoder",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
         for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [H])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="akidb")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    src, out = sys.argv[1], sys.argv[2]
    stamp_path = os.path.join(out, ".converted-from")
    digest = sha256(os.path.join(src, "model.safetensors"))
    if os.path.exists(os.path.join(out, "model.onnx")) and os.path.exists(stamp_path) \
            and open(stamp_path).read().strip() == digest:
        print(f"{out}/model.onnx is up to date")
        return
    cfg = json.load(open(os.path.join(src, "config.json")))
    model = build(src, cfg)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    tmp = os.path.join(out, "model.onnx.tmp")
    onnx.save(model, tmp)
    os.replace(tmp, os.path.join(out, "model.onnx"))
    for f in COPY:
        if os.path.exists(os.path.join(src, f)):
            shutil.copyfile(os.path.join(src, f), os.path.join(out, f))
    with open(stamp_path, "w") as f:
        f.write(digest + "\n")
    print(f"wrote {out}/model.onnx ({os.path.getsize(os.path.join(out, 'model.onnx')) >> 20} MiB)")


if __name__ == "__main__":
    main()
