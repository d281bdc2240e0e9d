"""A real-text ANN dataset in the texmex .fvecs/.ivecs format: distinct English sentences from
the documentation comments (`///`, `//!`) of the crates this workspace's Cargo.lock pins (their
sources as cargo fetched them from crates.io), embedded by the project's own MiniLM through
`examples/embed.rs`, with exact cosine top-100 ground truth.

Usage (from the repository root, after scripts/setup.sh; PY has numpy):
    PY=python-with-numpy $PY scripts/make_text_dataset.py N NQ OUTDIR [MODEL_DIR]
      e.g. 100000 1000 bench-data/text-100k models/all-MiniLM-L6-v2

Deterministic for a given Cargo.lock: crates in lock order, files sorted, sentences deduplicated
(case and spacing folded), then shuffled with a fixed seed; the first NQ become the queries
(so no query is a base vector). Writes sentences.txt (base, then queries) beside the vectors and
prints the sentence count found, the repeat rate (0 by construction) and the timings.
"""
import glob, os, random, re, subprocess, sys, time
import numpy as np

def lock_crates(lock="Cargo.lock"):
    text = open(lock, encoding="utf-8").read()
    for block in text.split("[[package]]")[1:]:
        name = re.search(r'^name = "([^"]+)"', block, re.M)
        ver = re.search(r'^version = "([^"]+)"', block, re.M)
        src = re.search(r'^source = "registry\+', block, re.M)
        if name and ver and src:
            yield name.group(1), ver.group(1)

def crate_dir(name, ver):
    hits = sorted(glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{name}-{ver}")))
    return hits[0] if hits else None

SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
def sentences(path):
    para, fence = [], False
    def flush():
        if para:
            yield from SPLIT.split(" ".join(para))
            para.clear()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s.startswith("///") or s.startswith("//!"):
                body = s[3:].strip()
                if body.startswith("```"):
                    fence = not fence
                    yield from flush()
                    continue
                if fence or not body or body.startswith(("#", "|", "[", "-", "*", "<")):
                    yield from flush()
                    continue
                para.append(body)
            else:
                fence = False
                yield from flush()
    yield from flush()

def keep(s):
    words = s.split()
    return (40 <= len(s) <= 300 and len(words) >= 6 and s[0].isupper()
            and sum(c.isalpha() for c in s) >= 0.7 * len(s.replace(" ", "")))

def write_ivecs(p, a):
    a = np.ascontiguousarray(a, dtype=np.int32); n, d = a.shape
    out = np.empty((n, d + 1), dtype=np.int32); out[:, 0] = d; out[:, 1:] = a; out.tofile(p)

def read_fvecs(p):
    raw = np.fromfile(p, dtype=np.int32)
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(np.float32)

def main():
    n, nq, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    model = sys.argv[4] if len(sys.argv) > 4 else "models/all-MiniLM-L6-v2"
    t0 = time.time()
    seen, found, crates = set(), [], 0
    for name, ver in lock_crates():
        d = crate_dir(name, ver)
        if d is None:
            continue
        crates += 1
        for path in sorted(glob.glob(f"{d}/**/*.rs", recursive=True)):
            for s in sentences(path):
                s = " ".join(s.split())
                key = s.lower()
                if keep(s) and key not in seen:
                    seen.add(key)
                    found.append(s)
    print(f"{len(found)} distinct sentences from {crates} crates ({time.time() - t0:.1f} s)")
    if len(found) < n + nq:
        sys.exit(f"need {n + nq} sentences, found {len(found)}")
    random.Random(7).shuffle(found)
    queries, base = found[:nq], found[nq:nq + n]
    os.makedirs(outdir, exist_ok=True)
    with open(f"{outdir}/sentences.txt", "w", encoding="utf-8") as f:
        f.write("\n".join(base + queries) + "\n")
    exe = "target/release/examples/embed"
    subprocess.run(["cargo", "build", "--release", "--example", "embed"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for what, texts, extra in (("base", base, []), ("query", queries, ["--query"])):
        t = time.time()
        with open(f"{outdir}/{what}.fvecs", "wb") as out:
            subprocess.run([exe, "--model-dir", model, "--fvecs", *extra],
                           input="\n".join(texts).encode() + b"\n", stdout=out, check=True)
        print(f"{what}: {len(texts)} sentences embedded in {time.time() - t:.1f} s")
    b, q = read_fvecs(f"{outdir}/base.fvecs"), read_fvecs(f"{outdir}/query.fvecs")
    assert b.shape == (n, b.shape[1]) and q.shape[0] == nq, (b.shape, q.shape)
    gt = np.empty((nq, 100), dtype=np.int32)
    for i in range(0, nq, 256):
        s = q[i:i + 256] @ b.T
        idx = np.argpartition(-s, 100, axis=1)[:, :100]
        o = np.take_along_axis(s, idx, 1).argsort(axis=1)[:, ::-1]
        gt[i:i + 256] = np.take_along_axis(idx, o, 1)
    write_ivecs(f"{outdir}/groundtruth.ivecs", gt)
    print(f"{outdir}: {n} x {b.shape[1]} base, {nq} queries, repeat rate 0 (deduplicated); "
          f"{time.time() - t0:.1f} s in all")

if __name__ == "__main__":
    main()
