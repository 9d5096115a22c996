// vila/vila.hpp — the umbrella header: everything in vila.hpp.
//
// Two parts need an explicit include because they bring third-party code along:
//   vila/backend/thrust.hpp   (included here when VILA_USE_THRUST is defined; vila::thrust does)
//   vila/vision/image.hpp     image decoding: compiles stb_image into the including file
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
#include "nn/residual.hpp"
#include "nn/rms_norm.hpp"
#include "nn/rope.hpp"
#include "nn/softmax.hpp"

#include "tokenizer/bpe_trainer.hpp"
#include "tokenizer/chat_template.hpp"
#include "tokenizer/tokenizer.hpp"

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

#include "llm/config.hpp"
#include "llm/generate.hpp"
#include "llm/llama.hpp"

#include "train/adamw.hpp"

#include "projector/projectors.hpp"
#include "vision/vit.hpp"

#include "model/checkpoint.hpp"
#include "model/splice.hpp"
#include "model/vlm.hpp"
