"""Peer for hybrid search: LanceDB (vector + full-text index, RRF reranker) on the corpus and
questions that `examples/hybrid_eval.rs --export DIR` wrote, with the same MiniLM vectors for the
corpus (as AkiDB stored them) and the same model for queries (Python onnxruntime + tokenizers,
mean pooling + L2, as AkiDB's provider does).

Usage: lancedb_hybrid.py EXPORT_DIR MODEL_DIR [--rounds N] [--threads N]
Prints recall@10 / MRR@10 per mode (vector, fts, hybrid) and slice, then per round the p50/p95
latency of a hybrid query (query embedding included), as one JSON line at the end.
pip install lancedb onnxruntime tokenizers numpy pyarrow."""
import json, os, sys, tempfile, time
import numpy as np, onnxruntime as ort, pyarrow as pa, lancedb
from lancedb.rerankers import RRFReranker
from tokenizers import Tokenizer

args = sys.argv[1:]
export, model_dir = args[0], args[1]
rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 3
threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 2

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.enable_truncation(256); tok.enable_padding()
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
names = {i.name for i in sess.get_inputs()}

def embed(text):
    e = tok.encode_batch([text])
    ids = np.array([x.ids for x in e], dtype=np.int64); am = np.array([x.attention_mask for x in e], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": am}
    if "token_type_ids" in names: feed["token_type_ids"] = np.zeros_like(ids)
    h = sess.run(None, feed)[0]; m = am[..., None].astype(np.float32); v = (h * m).sum(1) / m.sum(1)
    return (v / np.linalg.norm(v, axis=1, keepdims=True))[0]

rows = [json.loads(l) for l in open(os.path.join(export, "corpus.jsonl"))]
questions = [json.loads(l) for l in open(os.path.join(export, "questions.jsonl"))]
dim = len(rows[0]["vector"])
table = pa.table({
    "id": [r["id"] for r in rows], "text": [r["text"] for r in rows], "robot": [r["robot"] for r in rows],
    "vector": pa.array([np.asarray(r["vector"], dtype=np.float32) for r in rows], type=pa.list_(pa.float32(), dim)),
})
tmp = tempfile.mkdtemp(prefix="lance-hybrid-")
db = lancedb.connect(tmp)
t = time.perf_counter()
tbl = db.create_table("logs", table, mode="overwrite")
tbl.create_fts_index("text")
build_s = time.perf_counter() - t
reranker = RRFReranker()

def run(q, mode, qv=None):
    where = f"robot = '{q['robot']}'" if q["robot"] else None
    if mode == "vector":
        s = tbl.search(qv if qv is not None else embed(q["text"]), query_type="vector").metric("cosine")
    elif mode == "fts":
        s = tbl.search(q["text"], query_type="fts")
    else:
        s = tbl.search(query_type="hybrid").vector(qv if qv is not None else embed(q["text"])).text(q["text"]).rerank(reranker)
    if where: s = s.where(where, prefilter=True)
    return [r["id"] for r in s.limit(10).to_list()]

def score(ranked, relevant):
    top = ranked[:10]; found = sum(1 for i in top if i in relevant)
    pos = next((p for p, i in enumerate(top) if i in relevant), None)
    return found / min(10, len(relevant)), (0.0 if pos is None else 1.0 / (pos + 1))

rel = {}
for q in questions:
    qv = embed(q["text"])
    for mode in ["vector", "fts", "hybrid"]:
        try:
            r, m = score(run(q, mode, qv), set(q["relevant"]))
        except Exception as e:  # a query the peer refuses counts as a miss
            print(f"{mode} {q['text']!r}: {e}", file=sys.stderr); r, m = 0.0, 0.0
        for key in [(mode, "all"), (mode, q["slice"])]:
            a = rel.setdefault(key, [0.0, 0.0, 0]); a[0] += r; a[1] += m; a[2] += 1
slices = ["all", "general", "exact-token", "non-English", "paraphrase"]
print(f"{'slice':<12} {'n':>4} {'vector':>12} {'fts':>12} {'hybrid':>12}")
out = {}
for s in slices:
    cells = {m: (rel[(m, s)][0] / rel[(m, s)][2], rel[(m, s)][1] / rel[(m, s)][2]) for m in ["vector", "fts", "hybrid"] if (m, s) in rel}
    if not cells: continue
    print(f"{s:<12} {rel[('vector', s)][2]:>4} " + " ".join(f"{c[0]:.3f}/{c[1]:.3f}" for c in cells.values()))
    out[s] = {m: [round(c[0], 3), round(c[1], 3)] for m, c in cells.items()}
lat = []
for _ in range(rounds):
    ms = []
    for q in questions:
        t = time.perf_counter(); run(q, "hybrid"); ms.append((time.perf_counter() - t) * 1e3)
    lat.append((round(float(np.percentile(ms, 50)), 2), round(float(np.percentile(ms, 95)), 2)))
print(f"hybrid p50/p95 ms per round: {lat}", file=sys.stderr)
print(json.dumps({"peer": "lancedb " + lancedb.__version__, "rows": len(rows), "build_s": round(build_s, 2),
                  "relevance": out, "hybrid_latency_ms_p50_p95": lat}))
