"""Per-round ratios of scripts/bench_embed.sh output, AkiDB / peer: texts/s at batch 32 and
batch-1 p50 / p95 latency, then the medians and in how many rounds AkiDB's p95 was lower.
Usage: python3 scripts/embed_ratio.py LOG"""
import json, statistics, sys
rounds, cur = {}, None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("== round"):
        _, _, r, eng = line.split(); cur = rounds.setdefault(int(r), {}), eng
    elif line.startswith("{") and cur is not None:
        cur[0][cur[1]] = json.loads(line)
b32, p50, p95 = [], [], []
for r, d in sorted(rounds.items()):
    a, p = d.get("akidb"), d.get("peer")
    if not a or not p: continue
    b32.append(a["b32_texts_per_s"] / p["b32_texts_per_s"]); p50.append(a["b1_p50_ms"] / p["b1_p50_ms"]); p95.append(a["b1_p95_ms"] / p["b1_p95_ms"])
    print(f"round {r}: b32 {a['b32_texts_per_s']} vs {p['b32_texts_per_s']} texts/s ({b32[-1]:.2f}x); "
          f"b1 p50 {a['b1_p50_ms']} vs {p['b1_p50_ms']} ms ({p50[-1]:.3f}x); p95 {a['b1_p95_ms']} vs {p['b1_p95_ms']} ms ({p95[-1]:.3f}x)")
if p95:
    print(f"medians: b32 {statistics.median(b32):.2f}x, b1 p50 {statistics.median(p50):.3f}x, b1 p95 {statistics.median(p95):.3f}x; "
          f"AkiDB p95 lower in {sum(x < 1 for x in p95)} of {len(p95)} rounds")
