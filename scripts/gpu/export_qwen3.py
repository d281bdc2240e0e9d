"""Export a Qwen3-Embedding architecture with random weights to ONNX (for GPU benchmarks).

Usage: python export_qwen3.py {0.6b,4b} OUT_DIR [--dtype fp16|fp32] [--device cuda|cpu]

Builds Qwen3Model with the real shapes (../shared/gpu/README.md) and seeded random weights with
HF transformers, and exports it as a user exports Qwen3-Embedding: torch.onnx.export, inputs
input_ids / attention_mask with dynamic batch and sequence axes, output last_hidden_state,
opset 17, weights as external data when over 2 GB. OUT_DIR becomes a sentence-transformers
style folder AkiDB loads with OnnxConfig::from_dir: config.json, 1_Pooling (last token),
config_sentence_transformers.json (Qwen3's query prompt), tokenizer_config.json (left padding),
and tokenizer.json copied from the tiny fixture (its ids are valid for any vocabulary >= 600).
The same seed gives the same weights in fp16 and fp32, so the two exports can be compared.
Needs torch + transformers (present on the GPU machine); never part of AkiDB's set-up.
"""
import argparse, json, os, shutil, time
import torch
from transformers import Qwen3Config, Qwen3Model

SHAPES = {
    "0.6b": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072, vocab_size=151665),
    "4b": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=9728, vocab_size=151665),
}
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "tests", "fixtures", "qwen3-tiny")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("size", choices=["0.6b", "4b"]); ap.add_argument("out")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"]); ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = Qwen3Config(max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      pad_token_id=0, eos_token_id=0, **SHAPES[a.size])
    cfg._attn_implementation = "sdpa"
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    t = time.time()
    with torch.device(a.device):
        m = Qwen3Model(cfg).eval()  # fp32 init, so fp16 and fp32 exports share weights
    m = m.to(dtype)
    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__(); self.m = m
        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    os.makedirs(os.path.join(a.out, "1_Pooling"), exist_ok=True)
    ids = torch.randint(1, 500, (2, 16), device=a.device); am = torch.ones_like(ids); am[1, :4] = 0
    path = os.path.join(a.out, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(Wrap(m), (ids, am), path, input_names=["input_ids", "attention_mask"],
                          output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                                        "last_hidden_state": {0: "batch", 1: "sequence"}})
    cfg.save_pretrained(a.out)
    json.dump({"word_embedding_dimension": cfg.hidden_size, "pooling_mode_lasttoken": True, "include_prompt": True},
              open(os.path.join(a.out, "1_Pooling", "config.json"), "w"))
    shutil.copy(os.path.join(FIXTURE, "config_sentence_transformers.json"), a.out)
    shutil.copy(os.path.join(FIXTURE, "tokenizer_config.json"), a.out)
    shutil.copy(os.path.join(FIXTURE, "tokenizer.json"), a.out)
    json.dump({"name": f"qwen3-embedding-{a.size}-random-{a.dtype}"}, open(os.path.join(a.out, "akidb.json"), "w"))
    print(json.dumps({"exported": a.size, "dtype": a.dtype, "params": sum(p.numel() for p in m.parameters()),
                      "seconds": round(time.time() - t, 1), "dir": a.out}))

if __name__ == "__main__":
    main()
