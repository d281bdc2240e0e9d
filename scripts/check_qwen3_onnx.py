"""Check scripts/qwen3_onnx.py against transformers on a random small Qwen3 (developer tool).

Usage: python check_qwen3_onnx.py [--device cpu|cuda] [--dtype fp32|fp16] [--size tiny|0.6b|4b] [--keep DIR]

Builds a seeded random Qwen3Model with transformers, saves it as a checkpoint, exports it with
qwen3_onnx.py and runs the ONNX model in ONNX Runtime (CPU, or CUDA when --device cuda and
onnxruntime-gpu is importable) on batches of mixed lengths, left- and right-padded. Compares each
text's pooled vector with transformers' last-token state of the same text run alone, fp32
(cosine; prints worst per padding side as JSON, exits 1 below 0.999).
Needs torch + transformers + onnx + onnxruntime (never part of AkiDB's set-up).
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import torch
from transformers import Qwen3Config, Qwen3Model

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "gpu"))
from export_qwen3 import SHAPES as FULL  # noqa: E402  (the real architectures' shapes)

SHAPES = {"tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                       intermediate_size=128, vocab_size=600), **FULL}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu"); ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--size", default="tiny", choices=SHAPES); ap.add_argument("--keep")
    a = ap.parse_args()
    torch.manual_seed(7)
    cfg = Qwen3Config(max_position_embeddings=4096, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      pad_token_id=0, eos_token_id=0, attn_implementation="eager", **SHAPES[a.size])
    m = Qwen3Model(cfg).eval()
    if a.size == "tiny":
        with torch.no_grad():  # widen the random init so layers matter; norms not all ones
            for n, p in m.named_parameters():
                p.normal_(0, 0.3) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    work = a.keep or tempfile.mkdtemp()
    ck, out = os.path.join(work, "checkpoint"), os.path.join(work, "onnx")
    m.save_pretrained(ck)
    subprocess.run([sys.executable, os.path.join(HERE, "qwen3_onnx.py"), ck, out, "--dtype", a.dtype,
                    "--max-positions", "512"], check=True)
    import onnxruntime as ort
    providers = ["CUDAExecutionProvider"] if a.device == "cuda" else ["CPUExecutionProvider"]
    sess = ort.InferenceSession(os.path.join(out, "model.onnx"), providers=providers)
    dev = "cuda" if a.device == "cuda" else "cpu"
    m = m.to(dev)
    rng = np.random.default_rng(0)
    lengths = [1, 2, 5, 17, 33, 64, 3, 40]
    texts = [rng.integers(1, cfg.vocab_size, n).tolist() for n in lengths]
    with torch.no_grad():
        ref = [m(input_ids=torch.tensor([t], device=dev)).last_hidden_state[0, -1].float().cpu().numpy() for t in texts]
    report = {}
    for side in ("left", "right"):
        s = max(lengths)
        ids = np.zeros((len(texts), s), np.int64); am = np.zeros_like(ids)
        for r, t in enumerate(texts):
            off = s - len(t) if side == "left" else 0
            ids[r, off:off + len(t)] = t; am[r, off:off + len(t)] = 1
        got = sess.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": am})[0].astype(np.float32)
        cos = [float(np.dot(g, r) / (np.linalg.norm(g) * np.linalg.norm(r))) for g, r in zip(got, ref)]
        report[side] = {"min_cosine": min(cos), "mean_cosine": sum(cos) / len(cos)}
        # Batch of one, no padding.
    one = sess.run(["sentence_embedding"], {"input_ids": np.array([texts[4]]), "attention_mask": np.ones((1, 33), np.int64)})[0][0].astype(np.float32)
    report["single"] = float(np.dot(one, ref[4]) / (np.linalg.norm(one) * np.linalg.norm(ref[4])))
    report.update(size=a.size, dtype=a.dtype, device=a.device, provider=sess.get_providers()[0])
    print(json.dumps(report))
    worst = min(report["left"]["min_cosine"], report["right"]["min_cosine"], report["single"])
    sys.exit(0 if worst >= 0.999 else 1)


if __name__ == "__main__":
    main()
