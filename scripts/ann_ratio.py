"""Matched-recall comparison of scripts/bench_ann.sh output: per round, build-time ratio and each
side's QPS interpolated linearly at recall 0.95 / 0.98 / 0.99, as AkiDB / hnswlib.
Usage: python3 scripts/ann_ratio.py LOG"""
import json, sys
rounds, cur = [], None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("== round"):
        parts = line.split(); r, eng = int(parts[2]), parts[3]
        if eng == "hnswlib": cur = {"round": r}; rounds.append(cur)
        cur[eng] = {"sweep": []}
    elif line.startswith("{") and cur is not None:
        d = json.loads(line)
        if "sweep" in d:
            cur["hnswlib"].update(build=d["build_s"], sweep=[(p["recall10"], p["qps"]) for p in d["sweep"]])
        elif "build_s" in d:
            cur["akidb"]["build"] = d["build_s"]
        elif "ef" in d and "filter" not in d:
            cur["akidb"]["sweep"].append((d["recall"], d["qps"]))
def at(sweep, r):
    pts = sorted(sweep)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= r <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (r - r0) / (r1 - r0)
    return None
for rd in rounds:
    a, h = rd.get("akidb"), rd.get("hnswlib")
    if not a or "build" not in a: continue
    out = [f"round {rd['round']}: build {a['build']:.1f} s vs {h['build']:.1f} s ({a['build'] / h['build']:.2f}x)"]
    for r in (0.95, 0.98, 0.99):
        qa, qh = at(a["sweep"], r), at(h["sweep"], r)
        if qa and qh: out.append(f"QPS@{r}: {qa:,.0f} vs {qh:,.0f} ({qa / qh:.2f}x)")
    print("; ".join(out))
