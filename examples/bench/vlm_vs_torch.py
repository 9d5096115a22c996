#!/usr/bin/env python3
"""VLM speed: vila against PyTorch eager (transformers), same tiny VILA config, same run.

    pip install torch transformers
    python3 examples/bench/vlm_vs_torch.py --bench build/test/examples/bench/bench_vlm [--threads 2]

Config (REFERENCE.md section 7): CLIP ViT 4 x 256 on 64 px, patch 8; mlp2x_gelu; LLaMA width 512,
8 layers, 8 heads, SwiGLU 1376, vocab 32000; fp32. Modes: vit (CLIPVisionModel forward, 32
images, every layer on both sides, images/s), vit_features (VILA's hidden_states[-2]: vila stops
after the selected layer, transformers runs the whole tower with output_hidden_states) and prefill (LlavaForConditionalGeneration forward of 8 samples,
each one image = 64 features + 192 text tokens, tokens/s). Each side runs in its own process, at
the better of two OpenMP wait policies (tuned_env.py: PASSIVE with OpenBLAS's thread timeout,
REFERENCE.md's tuned settings, or no wait setting), best of N. Prints a Markdown table.

    python3 examples/bench/vlm_vs_torch.py --train --bench build/test/examples/bench/bench_vlm

times one training step instead (forward, backward, clipping at 1.0, AdamW) for VILA's stage 1
(projector only), stage 2 (projector + LLM) and everything trainable; PyTorch freezes the same
parts with requires_grad_(False). Reports tokens/s and peak RSS of each side (own process each).
"""
import argparse
import json
import os
import subprocess
import sys

from tuned_env import best_of_policies, timed, tuned_env

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

TORCH_TRAIN = r"""
import json, sys, time, torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
mode, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
vc = CLIPVisionConfig(hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4, image_size=64,
                      patch_size=8, hidden_act="quick_gelu")
tc = LlamaConfig(hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=8,
                 vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False)
cfg = LlavaConfig(vision_config=vc, text_config=tc, image_token_index=31999, image_seq_length=64)
cfg._attn_implementation = "sdpa"
m = LlavaForConditionalGeneration(cfg).float().train()
m.model.vision_tower.requires_grad_(mode == "train_all")
m.model.language_model.requires_grad_(mode != "train_stage1")
m.lm_head.requires_grad_(mode != "train_stage1")
text = torch.randint(0, 31999, (8, 192))
ids = torch.cat([text[:, :1], torch.full((8, 64), 31999), text[:, 1:]], dim=1)
labels = ids.masked_fill(ids == 31999, -100)
px = torch.randn(8, 3, 64, 64)
params = [p for p in m.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
best = 1e30
for s in range(steps + 1):
    t = time.perf_counter()
    loss = m(input_ids=ids, pixel_values=px, labels=labels).loss
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(params, 1.0); opt.step()
    if s: best = min(best, time.perf_counter() - t)
print(json.dumps({"mode": mode, "seconds": best, "tokens_per_s": ids.numel() / best,
                  "trainable": sum(p.numel() for p in params)}))
"""


def run(cmd, threads, key):
    def once(policy):
        r = subprocess.run(cmd, env=tuned_env(threads, policy), check=True, capture_output=True, text=True)
        return json.loads(r.stdout.strip().splitlines()[-1])
    return best_of_policies(once, key)


def train_table(benches, steps, threads):
    print("| stage | vila build | vila tokens/s | PyTorch tokens/s | ratio | vila s/step | vila peak RSS MB (analytic, ratio) "
          "| PyTorch peak RSS MB | trainable (vila / PyTorch) | OpenMP wait (vila / PyTorch) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    stage2 = {}
    for mode in ("train_stage1", "train_stage2", "train_all"):
        t = timed([sys.executable, "-c", TORCH_TRAIN, mode, str(steps), str(threads)], threads)
        for b in benches:
            v = timed([b, "--mode", mode, "--steps", str(steps)], threads)
            if mode == "train_stage2":
                stage2[b] = v["seconds"]
            print("| %s | %s | %.1f | %.1f | %.2f | %.2f | %.0f (%.0f, %.2fx) | %.0f | %d / %d | %s / %s |" % (
                mode, os.path.basename(b), v["tokens_per_s"], t["tokens_per_s"], v["tokens_per_s"] / t["tokens_per_s"],
                v["seconds"], v["peak_rss_mb"], v["analytic_mb"], v["peak_rss_mb"] / v["analytic_mb"], t["peak_rss_mb"],
                v["trainable"], t["trainable"], v["policy"], t["policy"]))
            sys.stdout.flush()
            if mode == "train_stage1":
                stage2.setdefault("stage1", {})[b] = v["seconds"]
    for b in benches:
        if b in stage2 and b in stage2.get("stage1", {}):
            print("\n%s: stage 1 takes %.2fx the time of stage 2" % (os.path.basename(b), stage2["stage1"][b] / stage2[b]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="append", help="vila benchmark binaries (repeatable: bench_vlm, bench_vlm_eigen)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--train", action="store_true", help="training steps per VILA stage instead of inference")
    a = ap.parse_args()
    benches = a.bench or ["build/test/examples/bench/bench_vlm"]
    if a.train:
        train_table(benches, a.steps, a.threads)
        return
    print("| mode | vila build | vila | PyTorch | unit | ratio | OpenMP wait (vila / PyTorch) |")
    print("|---|---|---|---|---|---|---|")
    for mode, key, unit in (("vit", "images_per_s", "images/s"), ("vit_features", "images_per_s", "images/s"),
                            ("prefill", "tokens_per_s", "tokens/s")):
        t = run([sys.executable, "-c", TORCH, mode, str(a.steps), str(a.threads)], a.threads, key)
        for b in benches:
            v = run([b, "--mode", mode, "--steps", str(a.steps)], a.threads, key)
            print("| %s | %s | %.1f | %.1f | %s | %.2f | %s / %s |" % (mode, os.path.basename(b), v[key], t[key], unit, v[key] / t[key],
                                                                     v["policy"], t["policy"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
