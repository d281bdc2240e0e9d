"""Summarise an ONNX Runtime profile (gpu_bench --profile): kernel time per op type, largest first.
Usage: python3 profile_summary.py PROFILE.json [TOP]"""
import json, sys, collections
events = json.load(open(sys.argv[1])); top = int(sys.argv[2]) if len(sys.argv) > 2 else 20
by_op, total = collections.Counter(), 0
for e in events:
    if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
        op = e.get("args", {}).get("op_name", "?"); by_op[op] += e["dur"]; total += e["dur"]
runs = sum(1 for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
print(json.dumps({"model_runs": runs, "node_time_ms": round(total / 1e3, 1)}))
for op, us in by_op.most_common(top):
    print(f"{op:32s} {us / 1e3:10.1f} ms  {100 * us / max(total, 1):5.1f}%")
