// vila/train/part.hpp — which part of a model a parameter belongs to.
//
// Freezing policies, optimizer groups (per-part learning rates, weight decay) and LoRA targets
// are all decisions over (part, name). A parameter's part follows from its name, which is the
// VILA layout's ("vision_tower.", "mm_projector.", "llm." + the HF name) or, for a bare LLM,
// the HF name itself:
//   module   vision | projector | llm
//   kind     embedding (token, patch, position, class embeddings), layer (with its index),
//            norm (every normalisation's weight and bias), head (lm_head), other (projector layers)
// train::for_each_parameter(model, f(const parameter_part&, name, param&)) is the visit every
// training component uses.
#pragma once
#include <string>
#include <string_view>

namespace vila::train {

enum class part { vision, projector, llm };

inline const char* part_name(part p) noexcept {
    switch (p) {
        case part::vision: return "vision_tower";
        case part::projector: return "mm_projector";
        default: return "llm";
    }
}

struct parameter_part {
    enum class kind { embedding, layer, norm, head, other };
    part module = part::llm;
    kind what = kind::other;
    int layer = -1;        // the decoder or encoder layer index when what == layer
    bool adapter = false;  // a LoRA adapter's A or B (".lora_A." / ".lora_B." in the name)
};

namespace detail {
inline bool starts_with(std::string_view s, std::string_view p) noexcept { return s.substr(0, p.size()) == p; }
/// The number right after `marker` in `name` ("model.layers.12.mlp" -> 12), or -1.
inline int index_after(std::string_view name, std::string_view marker) noexcept {
    const auto at = name.find(marker);
    if (at == std::string_view::npos) return -1;
    int v = 0;
    std::size_t i = at + marker.size();
    if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
    for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i) v = v * 10 + (name[i] - '0');
    return v;
}
}  // namespace detail

/// The part of a parameter named as in a VILA folder or an HF LLM folder.
inline parameter_part classify(std::string_view name) noexcept {
    using detail::starts_with;
    parameter_part p;
    p.adapter = name.find(".lora_A.") != std::string_view::npos || name.find(".lora_B.") != std::string_view::npos;
    std::string_view rest = name;
    if (starts_with(name, "vision_tower.")) {
        p.module = part::vision;
        rest = name.substr(13);
    } else if (starts_with(name, "mm_projector.")) {
        p.module = part::projector;
        return p;  // projector layers are "other"
    } else if (starts_with(name, "llm.")) {
        rest = name.substr(4);
    }
    using K = parameter_part::kind;
    if (p.module == part::vision) {
        if ((p.layer = detail::index_after(rest, "encoder.layers.")) >= 0) p.what = K::layer;
        else if (rest.find("embeddings.") != std::string_view::npos) p.what = K::embedding;
        else if (rest.find("layrnorm") != std::string_view::npos || rest.find("layernorm") != std::string_view::npos) p.what = K::norm;
        return p;
    }
    if (starts_with(rest, "model.embed_tokens.")) p.what = K::embedding;
    else if ((p.layer = detail::index_after(rest, "model.layers.")) >= 0) p.what = K::layer;
    else if (starts_with(rest, "model.norm.")) p.what = K::norm;
    else if (starts_with(rest, "lm_head.")) p.what = K::head;
    return p;
}

/// Visits every parameter of `model` as f(const parameter_part&, name, param&).
template <class Model, class F>
void for_each_parameter(Model& model, F&& f) {
    model.for_each_parameter([&](const std::string& name, auto& p) { f(classify(name), name, p); });
}

/// True for parameters that take no weight decay under HF's Trainer rule: biases and the
/// weights of normalisation layers (here: every rank-1 ".weight", which in these models is
/// always a norm's, e.g. mlp_downsample's LayerNorm "mm_projector.layers.1.weight").
template <class Param>
bool is_bias_or_norm(const std::string& name, const Param& p) {
    auto ends = [&](const char* s) {
        const std::string_view n(name), e(s);
        return n.size() >= e.size() && n.substr(n.size() - e.size()) == e;
    };
    return ends(".bias") || (p.value.rank() == 1 && ends(".weight"));
}

}  // namespace vila::train
