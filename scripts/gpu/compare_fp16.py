"""fp16 vs fp32 of the same export (same weights): cosine of AkiDB's embeddings on CUDA.

Usage: python compare_fp16.py FP32_DIR FP16_DIR
Embeds the fixture texts with `.gpu/bin/embed` from both folders on the CUDA provider and prints
the worst and mean cosine between the fp16 and fp32 vectors.
"""
import json, os, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
texts = json.load(open(os.path.join(here, "..", "..", "tests", "fixtures", "texts.json")))
texts = [t for t in texts if t.strip()]
def embed(d):
    p = subprocess.run([".gpu/bin/embed", "--model-dir", d, "--provider", "cuda"], input="\n".join(texts) + "\n",
                       capture_output=True, text=True, check=True)
    return [json.loads(l) for l in p.stdout.splitlines()]
a, b = embed(sys.argv[1]), embed(sys.argv[2])
cos = [sum(x * y for x, y in zip(u, v)) / ((sum(x * x for x in u) ** 0.5) * (sum(y * y for y in v) ** 0.5)) for u, v in zip(a, b)]
print(json.dumps({"fp16_vs_fp32_min_cosine": min(cos), "fp16_vs_fp32_mean_cosine": sum(cos) / len(cos), "texts": len(cos)}))
