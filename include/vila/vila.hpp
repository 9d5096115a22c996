// vila/vila.hpp — the umbrella header: everything in vila.hpp.
//
// The Thrust backend is included only when VILA_USE_THRUST is defined (the vila::thrust CMake
// target defines it), so a plain CPU build never needs Thrust or CUDA headers.
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
