"""Matched-recall comparison of scripts/bench_ann.sh output: per round, each AkiDB binary's build
time and QPS interpolated linearly at recall 0.95 / 0.98 / 0.99, against hnswlib's of the same
round (and, with BEFORE set in the bench, the current binary against the older one).
Usage: python3 scripts/ann_ratio.py LOG"""
import json
import sys

rounds, cur, eng = [], None, None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("== round"):
        parts = line.split()
        r, eng = int(parts[2]), parts[3]
        if eng == "hnswlib":
            cur = {"round": r}
            rounds.append(cur)
        cur[eng] = {"sweep": []}
    elif line.startswith("{") and cur is not None:
        d = json.loads(line)
        if "sweep" in d:
            cur[eng].update(build=d["build_s"], sweep=[(p["recall10"], p["qps"]) for p in d["sweep"]])
        elif "build_s" in d:
            cur[eng]["build"] = d["build_s"]
        elif "ef" in d and "selectivity" not in d:
            cur[eng]["sweep"].append((d["recall"], d["qps"]))


def at(sweep, r):
    pts = sorted(sweep)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= r <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (r - r0) / (r1 - r0)
    return None


def compare(a, b, label):
    out = [f"{label}: build {a['build']:.1f} s vs {b['build']:.1f} s ({a['build'] / b['build']:.2f}x)"]
    for r in (0.95, 0.98, 0.99):
        qa, qb = at(a["sweep"], r), at(b["sweep"], r)
        if qa and qb:
            out.append(f"QPS@{r}: {qa:,.0f} vs {qb:,.0f} ({qa / qb:.2f}x)")
    return "; ".join(out)


for rd in rounds:
    h = rd.get("hnswlib")
    for name in ("akidb", "akidb-before"):
        a = rd.get(name)
        if a and "build" in a and h and "build" in h:
            print(f"round {rd['round']} " + compare(a, h, f"{name} vs hnswlib"))
    if "build" in rd.get("akidb", {}) and "build" in rd.get("akidb-before", {}):
        print(f"round {rd['round']} " + compare(rd["akidb"], rd["akidb-before"], "after vs before"))
