"""How many queries per second the embedding model alone allows on this machine: per-text wall
and CPU time of ONNX Runtime (CPU provider) at batch sizes 1 to 16 and 1 or 2 intra-op threads,
over the distinct queries the server load test sends (akidb-server/examples/load.rs, and the
Chroma peer, scripts/peers/chroma_server_load.py: "<topic> robot R task N").

This is the floor both sides of scripts/bench_server.sh pay per query: Chroma's clients embed
each query alone (batch 1, one thread per run, runs in parallel); akidb-server merges concurrent
queries into shared runs. Whatever else a server does per query comes on top.

Usage: python3 scripts/model_ceiling.py [MODEL_DIR] [SECONDS_PER_CELL]
       (defaults: models/all-MiniLM-L6-v2, 2; needs numpy, onnxruntime, tokenizers)
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

model_dir = sys.argv[1] if len(sys.argv) > 1 else "models/all-MiniLM-L6-v2"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
TOPICS = ["why did the robot stop near the loading dock", "battery overheating while charging",
          "gripper failed to pick the tote", "lidar timeout and protective stop",
          "lost network connection to the fleet manager", "path blocked by a pallet in the aisle",
          "emergency stop pressed", "localization lost on the map"]
queries = [f"{TOPICS[i % 8]} robot {1 + (i // 8) % 8} task {10000 + i}" for i in range(4096)]
tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
tok.no_padding()
tok.enable_truncation(256)
encoded = [tok.encode(q) for q in queries]
lengths = [len(e.ids) for e in encoded]
print(json.dumps({"model": model_dir, "cores": os.cpu_count(), "queries": len(queries),
                  "tokens_min": min(lengths), "tokens_max": max(lengths)}))

for threads in (1, 2):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so,
                                providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    for batch in (1, 2, 4, 8, 16):
        def run(start):
            rows = encoded[start:start + batch]
            width = max(len(e.ids) for e in rows)
            ids = np.zeros((len(rows), width), np.int64)
            mask = np.zeros_like(ids)
            for i, e in enumerate(rows):
                ids[i, :len(e.ids)] = e.ids
                mask[i, :len(e.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in names:
                feed["token_type_ids"] = np.zeros_like(ids)
            sess.run(None, feed)
        for w in range(3):
            run(w * batch)
        texts, start = 0, 0
        cpu, wall = time.process_time(), time.perf_counter()
        while time.perf_counter() - wall < seconds and start + batch <= len(encoded):
            run(start)
            start += batch
            texts += batch
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(json.dumps({"threads": threads, "batch": batch, "texts": texts,
                          "wall_ms_per_text": round(1e3 * wall / texts, 3),
                          "cpu_ms_per_text": round(1e3 * cpu / texts, 3),
                          "texts_per_s_one_run_at_a_time": round(texts / wall, 1)}))
