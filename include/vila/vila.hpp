// vila/vila.hpp — the umbrella header: everything in vila.hpp.
//
// The Thrust backend needs an explicit opt-in because it brings third-party code along:
//   vila/backend/thrust.hpp   (included here when VILA_USE_THRUST is defined; vila::thrust does)
// Image decoding (vision/decode.hpp) links libjpeg, libpng and giflib: vila::vila brings them.
#pragma once

#include "config.hpp"
#include "error.hpp"

#include "core/eigen_map.hpp"
#include "core/param.hpp"
#include "core/rng.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "core/threads.hpp"

#include "backend/cpu.hpp"
#if defined(VILA_USE_THRUST)
#include "backend/thrust.hpp"
#endif

#include "nn/activations.hpp"
#include "nn/attention.hpp"
#include "nn/cross_entropy.hpp"
#include "nn/embedding.hpp"
#include "nn/layer_norm.hpp"
#include "nn/linear.hpp"
#include "nn/lora.hpp"
#include "nn/residual.hpp"
#include "nn/rms_norm.hpp"
#include "nn/rope.hpp"
#include "nn/softmax.hpp"

#include "tokenizer/bpe_trainer.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/image_text.hpp"
#include "tokenizer/tokenizer.hpp"

#include "io/atomic_file.hpp"
#include "io/folder.hpp"
#include "io/json.hpp"
#include "io/parameters.hpp"
#include "io/safetensors.hpp"
#include "io/tar.hpp"

#include "llm/config.hpp"
#include "llm/generate.hpp"
#include "llm/llama.hpp"

#include "optim/adamw.hpp"
#include "optim/sgd.hpp"

#include "projector/projectors.hpp"
#include "vision/vit.hpp"

#include "model/checkpoint.hpp"
#include "model/init.hpp"
#include "model/lora.hpp"
#include "model/splice.hpp"
#include "model/vlm.hpp"

#include "data/batch.hpp"
#include "data/images.hpp"
#include "data/instruct.hpp"
#include "data/llava.hpp"
#include "data/mixture.hpp"
#include "data/mmc4.hpp"
#include "data/open.hpp"
#include "data/pairs.hpp"
#include "data/record.hpp"
#include "data/render.hpp"
#include "data/sample.hpp"
#include "data/sampler.hpp"
#include "data/synthetic.hpp"
#include "data/shards.hpp"
#include "data/source.hpp"
#include "data/text.hpp"
#include "eval/metrics.hpp"
#include "eval/sets.hpp"
#include "eval/tasks.hpp"
#include "eval/world.hpp"

#include "train/callbacks.hpp"
#include "train/checkpoint.hpp"
#include "train/freeze.hpp"
#include "train/gradients.hpp"
#include "train/groups.hpp"
#include "train/model_step.hpp"
#include "train/part.hpp"
#include "train/recipe.hpp"
#include "train/schedule.hpp"
#include "train/trainer.hpp"
#include "train/world_model.hpp"
