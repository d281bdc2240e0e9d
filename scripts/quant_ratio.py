"""Summary of scripts/bench_quantized.sh's log: per round and setting, the resident-size growth
per vector, the best recall@10 reached, QPS interpolated at recall 0.95, and its ratio to
hnswlib's QPS at 0.95 in the same round. Usage: python3 scripts/quant_ratio.py LOG"""
import json
import sys

rows, cur = [], None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("== round"):
        _, _, r, kind, name = line.split()
        cur = {"round": int(r), "name": name if kind == "akidb" else f"{name} (peer)", "sweep": []}
        rows.append(cur)
    elif line.startswith("{") and cur is not None:
        d = json.loads(line)
        if "sweep" in d:  # a peer
            cur.update(mem=d["rss_bytes_per_vector"], build=d["build_s"],
                       sweep=[(p["recall"], p["qps"]) for p in d["sweep"]])
        elif "build_s" in d:
            cur.update(mem=d["index_bytes_per_vector"], build=d["build_s"])
        elif "ef" in d:
            cur["sweep"].append((d["recall"], d["qps"]))


def at(sweep, r):
    """QPS at recall r, linear between the two sweep points around it (None if never reached)."""
    pts = sorted(sweep)
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= r <= r1 and r1 > r0:
            return q0 + (q1 - q0) * (r - r0) / (r1 - r0)
    return next((q for rr, q in pts if rr >= r), None)


for rd in sorted({r["round"] for r in rows}):
    peer = next((r for r in rows if r["round"] == rd and r["name"] == "hnswlib (peer)"), None)
    base = at(peer["sweep"], 0.95) if peer else None
    for r in (x for x in rows if x["round"] == rd):
        q = at(r["sweep"], 0.95)
        best = max((rr for rr, _ in r["sweep"]), default=0)
        ratio = f"{q / base:.2f}x hnswlib" if q and base else "-"
        qps = f"{q:,.0f}" if q else "never"
        print(f"round {rd} {r['name']:<16} {r.get('mem', 0):>8,.0f} B/vector  build {r.get('build', 0):5.1f} s"
              f"  best recall {best:.3f}  QPS@0.95 {qps:>7}  {ratio}")
