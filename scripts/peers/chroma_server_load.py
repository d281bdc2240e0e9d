"""Peer for the server load test: Chroma's server (`chroma run`, from the chromadb package) on
loopback, loaded with the same lines as `akidb-server`'s `load` example (its --write-corpus
file), queried by client threads that embed each query themselves (Chroma embeds on the client
side) with the same MiniLM ONNX model (Python onnxruntime, one thread per client) and send it
over HTTP: closed loop at each concurrency, an open loop at a fixed rate (latency from the
scheduled time), and a mixed 90% query / 10% add load at concurrency 8. Queries are the same
distinct texts as the load example's.

Usage: chroma_server_load.py CORPUS MODEL_DIR [--levels 1,8,32,64] [--seconds 10] [--rate 50]
Prints one JSON line per run (requests, errors, qps, p50/p95/p99 ms).
pip install chromadb onnxruntime tokenizers numpy."""
import json, os, queue, socket, subprocess, sys, tempfile, threading, time
import numpy as np, onnxruntime as ort, chromadb
from tokenizers import Tokenizer

args = sys.argv[1:]
corpus, model_dir = args[0], args[1]
opt = lambda k, d: args[args.index(k) + 1] if k in args else d
levels = [int(x) for x in opt("--levels", "1,8,32,64").split(",")]
seconds = float(opt("--seconds", "10")); rate = float(opt("--rate", "50"))

tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json")); tok.enable_truncation(256); tok.enable_padding()
so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
names = {i.name for i in sess.get_inputs()}
def embed(texts):
    e = tok.encode_batch(texts)
    ids = np.array([x.ids for x in e], dtype=np.int64); am = np.array([x.attention_mask for x in e], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": am}
    if "token_type_ids" in names: feed["token_type_ids"] = np.zeros_like(ids)
    h = sess.run(None, feed)[0]; m = am[..., None].astype(np.float32); v = (h * m).sum(1) / m.sum(1)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()

TOPICS = ["why did the robot stop near the loading dock", "battery overheating while charging",
          "gripper failed to pick the tote", "lidar timeout and protective stop",
          "lost network connection to the fleet manager", "path blocked by a pallet in the aisle",
          "emergency stop pressed", "localization lost on the map"]
counter = [0]; lock = threading.Lock()
def next_query():
    with lock:
        i = counter[0]; counter[0] += 1
    return f"{TOPICS[i % 8]} robot {1 + (i // 8) % 8} task {10000 + i}"

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
path = tempfile.mkdtemp(prefix="chroma-load-")
chroma_bin = os.path.join(os.path.dirname(sys.executable), "chroma")
server = subprocess.Popen([chroma_bin, "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.time() + 60
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat(); break
        except Exception:
            if time.time() > deadline: raise
            time.sleep(0.5)
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    col = client.create_collection("load", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    lines = open(corpus).read().splitlines()
    t = time.perf_counter()
    for i in range(0, len(lines), 256):
        batch = lines[i:i + 256]
        col.add(ids=[f"evt-{j}" for j in range(i, i + len(batch))], embeddings=embed(batch), documents=batch)
    print(f"filled {len(lines)} lines in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    def query(c):
        v = embed([next_query()])
        c.query(query_embeddings=v, n_results=10)

    def report(name, level, lat, errors, elapsed):
        lat.sort(); pick = lambda p: lat[int(round((len(lat) - 1) * p))] if lat else 0.0
        print(json.dumps({"run": name, "level": level, "requests": len(lat) + errors, "errors": errors,
                          "qps": round(len(lat) / elapsed, 1), "p50_ms": round(pick(0.5), 2),
                          "p95_ms": round(pick(0.95), 2), "p99_ms": round(pick(0.99), 2)}), flush=True)

    def closed(clients, op):
        end = time.time() + seconds; lat, errs = [], [0]
        def worker():
            c = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("load")
            while time.time() < end:
                t = time.perf_counter()
                try: op(c); lat.append((time.perf_counter() - t) * 1e3)
                except Exception: errs[0] += 1
        t0 = time.perf_counter(); ts = [threading.Thread(target=worker) for _ in range(clients)]
        [x.start() for x in ts]; [x.join() for x in ts]
        return lat, errs[0], time.perf_counter() - t0

    for c in levels:
        report("closed", c, *closed(c, query))
    # Open loop.
    q = queue.Queue(); lat, errs = [], [0]
    def ow():
        c = chromadb.HttpClient(host="127.0.0.1", port=port).get_collection("load")
        while True:
            due = q.get()
            if due is None: return
            try: query(c); lat.append((time.perf_counter() - due) * 1e3)
            except Exception: errs[0] += 1
    ws = [threading.Thread(target=ow) for _ in range(64)]; [w.start() for w in ws]
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = t0 + i / rate; wait = due - time.perf_counter()
        if wait > 0: time.sleep(wait)
        q.put(due)
    for _ in ws: q.put(None)
    [w.join() for w in ws]
    report("open", rate, lat, errs[0], time.perf_counter() - t0)
    added = [0]
    def mixed(c):
        with lock:
            i = added[0]; added[0] += 1
        if i % 10 == 9:
            text = f"mixed load line {i}: lidar restarted after timeout on robot {i % 8}"
            c.add(ids=[f"mixed-{i}"], embeddings=embed([text]), documents=[text])
        else:
            query(c)
    report("mixed 90/10", 8, *closed(8, mixed))
finally:
    server.terminate(); server.wait(timeout=30)
