#!/usr/bin/env python3
"""VLM speed: vila against PyTorch eager (transformers), same tiny VILA config, same run.

    pip install torch transformers
    python3 examples/bench/vlm_vs_torch.py --bench build/test/examples/bench/bench_vlm [--threads 2]

Config (REFERENCE.md section 7): CLIP ViT 4 x 256 on 64 px, patch 8; mlp2x_gelu; LLaMA width 512,
8 layers, 8 heads, SwiGLU 1376, vocab 32000; fp32. Modes: vit (CLIPVisionModel forward, 32
images, every layer on both sides, images/s), vit_features (VILA's hidden_states[-2]: vila stops
after the selected layer, transformers runs the whole tower with output_hidden_states) and prefill (LlavaForConditionalGeneration forward of 8 samples,
each one image = 64 features + 192 text tokens, tokens/s). Each side runs in its own process with
OMP_WAIT_POLICY=PASSIVE and OpenBLAS's thread timeout (REFERENCE.md's tuned settings), best of N.
Prints a Markdown table.
"""
import argparse
import json
import os
import subprocess
import sys

from tuned_env import tuned_env

TORCH = r"""
import json, sys, time, torch
from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
mode, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
vc = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4, image_size=64,
                      patch_size=8, hidden_act="quick_gelu", attn_implementation="sdpa")
best = 1e30
if mode in ("vit", "vit_features"):
    m = CLIPVisionModel(vc).float().eval()
    px = torch.randn(32, 3, 64, 64)
    with torch.no_grad():
        for s in range(steps + 1):
            t = time.perf_counter(); m(pixel_values=px, output_hidden_states=mode == "vit_features")
            if s: best = min(best, time.perf_counter() - t)
    print(json.dumps({"mode": mode, "seconds": best, "images_per_s": 32 / best}))
else:
    tc = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                     vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False)
    cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=31999, image_seq_length=64)
    cfg._attn_implementation = "sdpa"
    m = LlavaForConditionalGeneration(cfg).float().eval()
    text = torch.randint(0, 31999, (8, 192))
    ids = torch.cat([text[:, :1], torch.full((8, 64), 31999), text[:, 1:]], dim=1)
    px = torch.randn(8, 3, 64, 64)
    with torch.no_grad():
        for s in range(steps + 1):
            t = time.perf_counter(); m(input_ids=ids, pixel_values=px)
            if s: best = min(best, time.perf_counter() - t)
    print(json.dumps({"mode": mode, "seconds": best, "tokens_per_s": ids.numel() / best}))
"""


def run(cmd, threads):
    r = subprocess.run(cmd, env=tuned_env(threads), check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="append", help="vila benchmark binaries (repeatable: bench_vlm, bench_vlm_blas)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    benches = a.bench or ["build/test/examples/bench/bench_vlm"]
    print("| mode | vila build | vila | PyTorch | unit | ratio |")
    print("|---|---|---|---|---|---|")
    for mode, key, unit in (("vit", "images_per_s", "images/s"), ("vit_features", "images_per_s", "images/s"),
                            ("prefill", "tokens_per_s", "tokens/s")):
        t = run([sys.executable, "-c", TORCH, mode, str(a.steps), str(a.threads)], a.threads)
        for b in benches:
            v = run([b, "--mode", mode, "--steps", str(a.steps)], a.threads)
            print("| %s | %s | %.1f | %.1f | %s | %.2f |" % (mode, os.path.basename(b), v[key], t[key], unit, v[key] / t[key]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
