// vila/model/init.hpp — fresh weights for a model trained from scratch (the synthetic world's
// VLM, a text LLM of your own), by PyTorch's defaults for each kind of parameter:
//   linear and convolution weights   U(-1/sqrt(fan_in), 1/sqrt(fan_in))  (nn.Linear, nn.Conv2d)
//   biases                           0
//   norm weights (any rank-1 weight) 1
//   token embeddings                 N(0, embedding_std)  (default 1, nn.Embedding's own)
//   position and class embeddings    N(0, 0.02)  (as CLIP initialises them)
// Token embeddings at N(0, 1) matter for a small LLM that must learn in context: at std 0.02
// the token identity is drowned out and induction heads never form (SCIENCE.md, rule 2).
// The kind is read from the parameter's name and rank, so any model with for_each_parameter
// (name, param&) can be initialised; `only` restricts it to names with a given prefix (e.g.
// "mm_projector." to start a projector afresh).
#pragma once
#include <cmath>
#include <string>

#include "../core/param.hpp"
#include "../core/rng.hpp"

namespace vila::model {

struct init_options {
    double embedding_std = 1.0;
    double position_std = 0.02;
    std::string only;  // "": every parameter; else those whose name starts with it
};

template <class Model>
void init_weights(Model& m, rng& gen, const init_options& o = {}) {
    m.for_each_parameter([&](const std::string& name, auto& p) {
        if (!o.only.empty() && name.rfind(o.only, 0) != 0) return;
        auto& v = p.value;
        const bool bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
        if (name.find("position_embedding") != std::string::npos || name.find("class_embedding") != std::string::npos) {
            gen.fill_normal(v, 0.0, o.position_std);
        } else if (name.find("embed_tokens") != std::string::npos) {
            gen.fill_normal(v, 0.0, o.embedding_std);
        } else if (bias) {
            v.fill(0.0f);
        } else if (v.rank() == 1) {
            v.fill(1.0f);
        } else {
            const double fan_in = double(v.size()) / double(v.dim(0));
            const double bound = 1.0 / std::sqrt(fan_in);
            gen.fill_uniform(v, -bound, bound);
        }
    });
}

}  // namespace vila::model
