#!/usr/bin/env python3
"""Decoder speed: vila against PyTorch eager (transformers LlamaForCausalLM), same config, same run.

    pip install torch transformers
    python3 examples/bench/llm_vs_torch.py --bench build/test/examples/bench/bench_llm [--threads 2] [--bf16]

Config (the issue's): width 512, 8 layers, 8 heads, SwiGLU 1376, vocab 32000, batch 8 x 256,
fp32. Modes: train (forward + backward + AdamW), prefill (one forward of the batch), decode
(greedy, KV cache, 64 tokens after a 16-token prompt, batch 1). Each side runs in its own
process, at the better of two OpenMP wait policies (tuned_env.py: PASSIVE with OpenBLAS's thread
timeout, REFERENCE.md section 7's tuned settings, or no wait setting), best of N, and reports
peak RSS. Prints a Markdown table.
--bf16 adds a second table: train and prefill with vila's `--precision bf16` against PyTorch's
bf16 CPU autocast, eager and under torch.compile (the first, untimed step compiles).
"""
import argparse
import json
import os
import subprocess
import sys

from tuned_env import best_of_policies, timed, tuned_env

TORCH = r"""
import json, sys, time, resource, torch
from transformers import LlamaConfig, LlamaForCausalLM
import contextlib
mode, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
variant = sys.argv[4] if len(sys.argv) > 4 else "fp32"  # fp32 | bf16 (autocast) | compile_bf16
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                  vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False, attn_implementation="sdpa")
m = LlamaForCausalLM(cfg).float()
amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant != "fp32" else contextlib.nullcontext
fwd = torch.compile(m) if variant == "compile_bf16" else m
ids = torch.randint(0, 32000, (8, 256))
best = 1e30
if mode == "train":
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    for s in range(steps + 1):
        t = time.perf_counter()
        with amp():
            loss = fwd(input_ids=ids, labels=ids).loss
        opt.zero_grad(); loss.backward(); opt.step()
        if s: best = min(best, time.perf_counter() - t)
    tokens = 8 * 256
elif mode == "prefill":
    with torch.no_grad(), amp():
        for s in range(steps + 1):
            t = time.perf_counter(); fwd(input_ids=ids)
            if s: best = min(best, time.perf_counter() - t)
    tokens = 8 * 256
else:
    prompt = ids[:1, :16]
    with torch.no_grad():
        for s in range(steps + 1):
            out = m(input_ids=prompt, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            t = time.perf_counter()
            for _ in range(64):
                out = m(input_ids=nxt, past_key_values=past, use_cache=True)
                past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
            if s: best = min(best, time.perf_counter() - t)
    tokens = 64
print(json.dumps({"mode": mode, "seconds": best, "tokens_per_s": tokens / best}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="append", help="vila benchmark binaries (repeatable: bench_llm, bench_llm_eigen)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="also vila bf16 against PyTorch bf16 autocast, eager and compiled")
    a = ap.parse_args()
    benches = a.bench or ["build/test/examples/bench/bench_llm"]
    print("| mode | vila build | vila tokens/s | PyTorch tokens/s | ratio | vila GFLOP/s (GFLOP/step) | vila peak RSS MB "
          "(analytic need, ratio) | PyTorch peak RSS MB | OpenMP wait (vila / PyTorch) |")
    print("|---|---|---|---|---|---|---|---|---|")
    decode_rows = []
    for mode in ("train", "prefill", "decode"):
        t = timed([sys.executable, "-c", TORCH, mode, str(a.steps), str(a.threads)], a.threads)
        for b in benches:
            v = timed([b, "--mode", mode, "--steps", str(a.steps)], a.threads)
            if mode == "decode":
                decode_rows.append((b, v))
            print("| %s | %s | %.1f | %.1f | %.2f | %.1f (%.1f) | %.0f (%.0f, %.2fx) | %.0f | %s / %s |" % (
                mode, os.path.basename(b), v["tokens_per_s"], t["tokens_per_s"], v["tokens_per_s"] / t["tokens_per_s"],
                v["gflops"], v["gflop_per_step"], v["peak_rss_mb"], v["analytic_mb"], v["peak_rss_mb"] / v["analytic_mb"],
                t["peak_rss_mb"], v["policy"], t["policy"]))
            sys.stdout.flush()
    # decode reads every weight once per token: its ceiling is the machine's read bandwidth
    bw = best_of_policies(lambda p: json.loads(subprocess.run([benches[0], "--mode", "bandwidth"], env=tuned_env(a.threads, p), check=True,
                                                              capture_output=True, text=True).stdout.strip().splitlines()[-1]), "read_gbps")
    print("\nread bandwidth (STREAM-style probe, %d threads): %.1f GB/s" % (a.threads, bw["read_gbps"]))
    for b, v in decode_rows:
        print("%s decode reads the weights at %.1f GB/s: %.0f%% of it" % (os.path.basename(b), v["weight_gbps"], 100 * v["weight_gbps"] / bw["read_gbps"]))
    if a.bf16:
        print("\n| mode | vila build | vila bf16 tokens/s (kernel) | PyTorch bf16 autocast | ratio | PyTorch compile + bf16 | ratio | "
              "vila GFLOP/s | OpenMP wait (vila / eager / compiled) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for mode in ("train", "prefill"):
            e = timed([sys.executable, "-c", TORCH, mode, str(a.steps), str(a.threads), "bf16"], a.threads)
            c = timed([sys.executable, "-c", TORCH, mode, str(a.steps), str(a.threads), "compile_bf16"], a.threads)
            for b in benches:
                v = timed([b, "--mode", mode, "--steps", str(a.steps), "--precision", "bf16"], a.threads)
                print("| %s | %s | %.1f (%s) | %.1f | %.2f | %.1f | %.2f | %.1f | %s / %s / %s |" % (
                    mode, os.path.basename(b), v["tokens_per_s"], v.get("bf16_kernel", "?"), e["tokens_per_s"],
                    v["tokens_per_s"] / e["tokens_per_s"], c["tokens_per_s"], v["tokens_per_s"] / c["tokens_per_s"], v["gflops"],
                    v["policy"], e["policy"], c["policy"]))
                sys.stdout.flush()


if __name__ == "__main__":
    main()
