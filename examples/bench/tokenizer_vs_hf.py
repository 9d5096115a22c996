#!/usr/bin/env python3
"""Tokenizer encode throughput: vila against HF tokenizers (encode_batch), same corpus, same threads.

    pip install tokenizers
    python3 examples/bench/tokenizer_vs_hf.py --bench build/test/examples/bench/bench_tokenizer \
        [--shared ../shared] [--mb 10]

Builds a deterministic mixed corpus (English prose, code, numbers, multilingual text and emoji
from the reference corpus) of about --mb megabytes, then for each tokenizer and 1 and 2 threads
runs vila's bench_tokenizer and HF's encode_batch (RAYON_NUM_THREADS) in the same run, best of 3,
and prints a Markdown table with the ratio. Also reports peak RSS of loading each tokenizer.
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def make_corpus(path, mb):
    rng = random.Random(11)
    ref = [json.loads(l)["text"] for l in open(os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.jsonl"), encoding="utf-8")]
    words = ("the of and to in is that for it as was with be by on not he this are or his from at which but have an "
             "they you were her all she there would their we him been has when who will more no if out so said what "
             "up its about into than them can only other new some could time these two may then do first any my now "
             "such like our over man me even most made after also did many before must through back years where much "
             "vision language model image token projector decoder training pretraining interleaved caption").split()
    code = ["for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }", "def forward(self, x):\n    return self.proj(x) + x",
            "if err != nil { return fmt.Errorf(\"load %s: %w\", path, err) }", "SELECT id, name FROM users WHERE age > 42;"]
    out, size = [], 0
    while size < mb * 1e6:
        k = rng.random()
        if k < 0.6:
            s = " ".join(rng.choice(words) for _ in range(rng.randint(8, 40)))
            s = s[0].upper() + s[1:] + rng.choice([".", "!", "?", ", 2024.", " (3.14)."])
        elif k < 0.75:
            s = rng.choice(code)
        elif k < 0.9:
            s = rng.choice(ref)
        else:
            s = " ".join(str(rng.randint(0, 10 ** rng.randint(1, 8))) for _ in range(10))
        s = s.replace("\n", " ")
        out.append(s)
        size += len(s.encode("utf-8")) + 1
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return size


def hf_run(tok_path, corpus, threads):
    code = r"""
import json, sys, time, resource
from tokenizers import Tokenizer
t0 = time.perf_counter(); tok = Tokenizer.from_file(sys.argv[1]); load = time.perf_counter() - t0
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lines = open(sys.argv[2], encoding="utf-8", newline="\n").read().split("\n")[:-1]
nbytes = sum(len(l.encode("utf-8")) for l in lines)
best = 1e30
for _ in range(3):
    t = time.perf_counter(); enc = tok.encode_batch(lines, add_special_tokens=True); best = min(best, time.perf_counter() - t)
print(json.dumps({"bytes": nbytes, "tokens": sum(len(e.ids) for e in enc), "seconds": best, "mb_per_s": nbytes / best / 1e6,
                  "load_seconds": load, "load_rss_kb": rss_load}))
"""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    r = subprocess.run([sys.executable, "-c", code, tok_path, corpus], env=env, check=True, capture_output=True, text=True)
    return json.loads(r.stdout)


def vila_run(bench, tok_dir, corpus, threads):
    r = subprocess.run(["/usr/bin/time", "-f", "%M", bench, "--tokenizer", tok_dir, "--corpus", corpus, "--threads",
                        str(threads)], check=True, capture_output=True, text=True)
    res = json.loads(r.stdout)
    res["peak_rss_kb"] = int(r.stderr.strip().splitlines()[-1])
    return res


def load_rss_vila(bench, tok_dir, tmp):
    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").close()
    r = subprocess.run(["/usr/bin/time", "-f", "%M", bench, "--tokenizer", tok_dir, "--corpus", empty, "--repeat", "1"],
                       check=True, capture_output=True, text=True)
    return int(r.stderr.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "test", "examples", "bench", "bench_tokenizer"))
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared"))
    ap.add_argument("--mb", type=float, default=10)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    corpus = os.path.join(tmp, "corpus.txt")
    size = make_corpus(corpus, a.mb)
    print("corpus: %.1f MB, %s" % (size / 1e6, corpus), file=sys.stderr)
    toks = [("gpt2", os.path.join(ROOT, "tests", "data", "tokenizers", "gpt2")),
            ("qwen3", os.path.join(ROOT, "tests", "data", "tokenizers", "qwen3")),
            ("mistral", os.path.join(ROOT, "tests", "data", "tokenizers", "mistral"))]
    for name in ("llama2", "llama3"):
        p = os.path.join(a.shared, "tokenizers", name)
        if os.path.exists(p):
            toks.append((name, p))
    print("| tokenizer | threads | vila MB/s | HF tokenizers MB/s | ratio | same tokens |")
    print("|---|---|---|---|---|---|")
    rss = []
    for name, d in toks:
        for threads in (1, 2):
            v = vila_run(a.bench, d, corpus, threads)
            h = hf_run(os.path.join(d, "tokenizer.json"), corpus, threads)
            print("| %s | %d | %.2f | %.2f | %.2f | %s |" % (name, threads, v["mb_per_s"], h["mb_per_s"],
                                                          v["mb_per_s"] / h["mb_per_s"], "yes" if v["tokens"] == h["tokens"] else "NO"))
            sys.stdout.flush()
        rss.append((name, load_rss_vila(a.bench, d, tmp), h["load_rss_kb"]))
    print()
    print("| tokenizer | vila load peak RSS (MB) | python + tokenizers load peak RSS (MB) |")
    print("|---|---|---|")
    for name, v, h in rss:
        print("| %s | %.0f | %.0f |" % (name, v / 1024, h / 1024))


if __name__ == "__main__":
    main()
