"""Export a Qwen3-Embedding architecture with random weights to ONNX (for GPU benchmarks).

Usage: python export_qwen3.py {0.6b,4b} OUT_DIR [--dtype fp16|fp32] [--device cuda|cpu]
                              [--graph traced|fused] [--reference]

Builds Qwen3Model with the real shapes (../shared/gpu/README.md) and seeded random weights with
HF transformers, and exports it as a user exports Qwen3-Embedding: torch.onnx.export, inputs
input_ids / attention_mask with dynamic batch and sequence axes, output last_hidden_state,
opset 17, weights as external data when over 2 GB. OUT_DIR becomes a sentence-transformers
style folder AkiDB loads with OnnxConfig::from_dir: config.json, 1_Pooling (last token),
config_sentence_transformers.json (Qwen3's query prompt), tokenizer_config.json (left padding),
and tokenizer.json copied from the tiny fixture (its ids are valid for any vocabulary >= 600).
The same seed gives the same weights in fp16 and fp32, so the two exports can be compared.
--graph fused writes the same weights as AkiDB's fused graph instead (scripts/qwen3_onnx.py:
GroupQueryAttention, skip RMSNorm, pooling inside the graph; output sentence_embedding).
--reference also writes OUT_DIR/reference.json: the fixture texts (tests/fixtures/texts.json and
the tiny fixture's queries with their instruction) embedded by transformers in fp32, each text
alone, last token, L2-normalised: what `gpu_bench --reference` checks either export against.
Needs torch + transformers (present on the GPU machine); never part of AkiDB's set-up.
"""
import argparse, json, os, shutil, time
import sys
import torch
from transformers import Qwen3Config, Qwen3Model

SHAPES = {
    "0.6b": dict(hidden_size=1024, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8, head_dim=128, intermediate_size=3072, vocab_size=151665),
    "4b": dict(hidden_size=2560, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8, head_dim=128, intermediate_size=9728, vocab_size=151665),
}
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "tests", "fixtures", "qwen3-tiny")


def write_reference(m, path, device):
    """transformers' fp32 embeddings of the fixture texts, in reference.json's format."""
    from tokenizers import Tokenizer
    tiny = json.load(open(os.path.join(FIXTURE, "reference.json")))
    tok = Tokenizer.from_file(os.path.join(FIXTURE, "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    prompt = json.load(open(os.path.join(FIXTURE, "config_sentence_transformers.json")))["prompts"]["query"]

    def embed(text):
        ids = tok.encode(text, add_special_tokens=True).ids + [eos]
        with torch.no_grad():
            h = m(input_ids=torch.tensor([ids], device=device), use_cache=False).last_hidden_state
        return [round(float(x), 7) for x in torch.nn.functional.normalize(h[0, -1].float(), dim=-1)], len(ids)

    docs = [embed(t) for t in tiny["documents"]["texts"]]
    qs = [embed(prompt + q) for q in tiny["queries"]["texts"]]
    json.dump({"model": "random-weights", "task": tiny["task"], "produced_by": "transformers fp32",
               "documents": {"texts": tiny["documents"]["texts"], "token_counts": [d[1] for d in docs],
                             "embeddings": [d[0] for d in docs]},
               "queries": {"texts": tiny["queries"]["texts"], "token_counts": [q[1] for q in qs],
                           "embeddings": [q[0] for q in qs]}}, open(path, "w"))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("size", choices=["0.6b", "4b"]); ap.add_argument("out")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "fp32"]); ap.add_argument("--device", default="cuda")
    ap.add_argument("--graph", default="traced", choices=["traced", "fused"])
    ap.add_argument("--reference", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = Qwen3Config(max_position_embeddings=40960, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      pad_token_id=0, eos_token_id=0, **SHAPES[a.size])
    cfg._attn_implementation = "sdpa"
    dtype = torch.float16 if a.dtype == "fp16" else torch.float32
    t = time.time()
    with torch.device(a.device):
        m = Qwen3Model(cfg).eval()  # fp32 init, so fp16 and fp32 exports share weights
    os.makedirs(os.path.join(a.out, "1_Pooling"), exist_ok=True)
    if a.reference:
        write_reference(m, os.path.join(a.out, "reference.json"), a.device)
    if a.graph == "fused":
        sys.path.insert(0, os.path.join(HERE, ".."))
        import qwen3_onnx
        w = {k: v.detach().float().cpu().numpy() for k, v in m.state_dict().items()}
        qwen3_onnx.save(qwen3_onnx.build(cfg.to_dict(), w, a.dtype), a.out)
        del w
    m = m.to(dtype)
    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__(); self.m = m
        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    ids = torch.randint(1, 500, (2, 16), device=a.device); am = torch.ones_like(ids); am[1, :4] = 0
    path = os.path.join(a.out, "model.onnx")
    if a.graph == "traced":
        with torch.no_grad():
            torch.onnx.export(Wrap(m), (ids, am), path, input_names=["input_ids", "attention_mask"],
                              output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "sequence"},
                                            "attention_mask": {0: "batch", 1: "sequence"},
                                            "last_hidden_state": {0: "batch", 1: "sequence"}})
    cfg.save_pretrained(a.out)
    json.dump({"word_embedding_dimension": cfg.hidden_size, "pooling_mode_lasttoken": True, "include_prompt": True},
              open(os.path.join(a.out, "1_Pooling", "config.json"), "w"))
    shutil.copy(os.path.join(FIXTURE, "config_sentence_transformers.json"), a.out)
    shutil.copy(os.path.join(FIXTURE, "tokenizer_config.json"), a.out)
    shutil.copy(os.path.join(FIXTURE, "tokenizer.json"), a.out)
    json.dump({"name": f"qwen3-embedding-{a.size}-random-{a.dtype}-{a.graph}"}, open(os.path.join(a.out, "akidb.json"), "w"))
    print(json.dumps({"exported": a.size, "dtype": a.dtype, "graph": a.graph, "params": sum(p.numel() for p in m.parameters()),
                      "seconds": round(time.time() - t, 1), "dir": a.out}))

if __name__ == "__main__":
    main()
