"""Peers of the quantization sweep (issue: Qwen3-sized vectors in bounded memory): hnswlib (f32)
and USearch (f16, i8, b1: HNSW over quantized vectors, the closest peer to AkiDB's codes) on a
texmex .fvecs dataset, cosine, the same M and ef_construction, one search thread.

Prints one JSON line per index: build seconds (all threads), the resident-size growth per vector
while the index was built (VmRSS from /proc, measured after the dataset was loaded), and
recall@10 / QPS over an ef sweep (USearch's `expansion_search`).

Usage: python scripts/peers/quantized_peers.py DATA_DIR [M] [EF_CONSTRUCTION] [KINDS]
  KINDS: comma-separated of hnswlib,f16,i8,b1 (default all). Needs numpy, hnswlib, usearch.
"""
import gc, json, sys, time
import numpy as np


def read_fvecs(p):
    a = np.fromfile(p, dtype=np.int32); d = a[0]; return a.reshape(-1, d + 1)[:, 1:].view(np.float32)


def read_ivecs(p):
    a = np.fromfile(p, dtype=np.int32); d = a[0]; return a.reshape(-1, d + 1)[:, 1:]


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def sweep(search, q, gt, efs, set_ef):
    out = []
    for ef in efs:
        set_ef(ef)
        t = time.perf_counter()
        labels = [search(q[i]) for i in range(len(q))]
        dt = time.perf_counter() - t
        rec = np.mean([len(set(map(int, labels[i][:10])) & set(gt[i, :10])) / 10 for i in range(len(q))])
        out.append({"ef": ef, "recall": float(rec), "qps": len(q) / dt})
    return out


def main():
    ds = sys.argv[1]
    M = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    efc = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    kinds = (sys.argv[4] if len(sys.argv) > 4 else "hnswlib,f16,i8,b1").split(",")
    base, q, gt = read_fvecs(f"{ds}/base.fvecs"), read_fvecs(f"{ds}/query.fvecs"), read_ivecs(f"{ds}/groundtruth.ivecs")
    base = np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True))
    q = np.ascontiguousarray(q / np.linalg.norm(q, axis=1, keepdims=True))
    n, d = base.shape
    efs = [10, 20, 40, 80, 160, 320]
    for kind in kinds:
        gc.collect()
        r0 = rss()
        t = time.perf_counter()
        if kind == "hnswlib":
            import hnswlib
            idx = hnswlib.Index(space="cosine", dim=d)
            idx.init_index(max_elements=n, M=M, ef_construction=efc, random_seed=1)
            idx.add_items(base, np.arange(n))
            build = time.perf_counter() - t
            idx.set_num_threads(1)
            search = lambda v: idx.knn_query(v[None, :], k=10)[0][0]
            set_ef = idx.set_ef
        else:
            from usearch.index import Index
            if kind == "b1":
                # USearch's binary index takes packed sign bits and ranks by Hamming distance
                # (it keeps no f32 vectors to re-score with).
                idx = Index(ndim=d, metric="hamming", dtype="b1", connectivity=M, expansion_add=efc)
                idx.add(np.arange(n), np.packbits(base > 0, axis=1))
                search = lambda v: idx.search(np.packbits(v > 0), 10, threads=1).keys
            else:
                idx = Index(ndim=d, metric="cos", dtype=kind, connectivity=M, expansion_add=efc)
                idx.add(np.arange(n), base)
                search = lambda v: idx.search(v, 10, threads=1).keys
            build = time.perf_counter() - t
            def set_ef(ef):
                idx.expansion_search = ef
        grown = rss() - r0
        res = {"peer": "hnswlib" if kind == "hnswlib" else f"usearch-{kind}", "n": n, "d": d, "M": M,
               "efc": efc, "build_s": build, "rss_bytes_per_vector": grown / n,
               "sweep": sweep(search, q, gt, efs, set_ef)}
        print(json.dumps(res), flush=True)
        del idx, search
        gc.collect()


if __name__ == "__main__":
    main()
