// vila/train/freeze.hpp — freezing policies: which parameters a training stage updates.
//
// A policy is a type with `static bool trains(const parameter_part&, std::string_view name)`.
// The shipped ones follow VILA's stages:
//   freeze::align_projector  stage 1: only the projector (ViT and LLM frozen; gradients still
//                            flow through the frozen LLM back to the projector)
//   freeze::pretrain         stage 2: projector + LLM (the paper: unfreezing the LLM here is
//                            what gives in-context learning)
//   freeze::sft              stage 3: projector + LLM;  freeze::sft_with_vision: all three
//   freeze::all_trainable    everything (a text LLM's pre-training too)
//   freeze::llm_only         only the LLM
//   freeze::lora_adapters    only LoRA adapters (model/lora.hpp): the base stays frozen, keeps
//                            no gradient or optimizer state
//   freeze::predicate<F>     any rule: F is a type with the same static trains()
// apply_freeze<Policy>(model) sets every parameter's trainable flag once, before optimizer
// state exists. A frozen parameter then holds no gradient buffer, gets no optimizer state and
// no weight-gradient GEMM; a vision tower with no trainable parameter runs no backward at all.
// Re-applying another policy between stages is safe: optimizer state is keyed by name
// (optim/), so a newly trainable parameter gets fresh state and a newly frozen one is skipped.
#pragma once
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/shape.hpp"
#include "part.hpp"

namespace vila::train {

namespace freeze {

/// Trains whole modules: Vision, Projector, Llm.
template <bool Vision, bool Projector, bool Llm>
struct parts {
    static constexpr bool trains(const parameter_part& p, std::string_view) noexcept {
        return p.module == part::vision ? Vision : p.module == part::projector ? Projector : Llm;
    }
};

using align_projector = parts<false, true, false>;
using pretrain = parts<false, true, true>;
using sft = parts<false, true, true>;
using sft_with_vision = parts<true, true, true>;
using all_trainable = parts<true, true, true>;
using llm_only = parts<false, false, true>;

/// LoRA fine-tuning: the adapters train, every base weight is frozen.
struct lora_adapters {
    static constexpr bool trains(const parameter_part& p, std::string_view) noexcept { return p.adapter; }
};

/// A policy from a rule type: Rule::trains(const parameter_part&, std::string_view) -> bool.
template <class Rule>
struct predicate {
    static bool trains(const parameter_part& p, std::string_view name) { return Rule::trains(p, name); }
};

}  // namespace freeze

namespace detail {
template <class P, class = void>
struct is_freeze_policy : std::false_type {};
template <class P>
struct is_freeze_policy<P, std::void_t<decltype(P::trains(std::declval<const parameter_part&>(), std::declval<std::string_view>()))>>
    : std::is_convertible<decltype(P::trains(std::declval<const parameter_part&>(), std::declval<std::string_view>())), bool> {};
}  // namespace detail

/// True for a type usable as a freezing policy.
template <class P>
inline constexpr bool is_freeze_policy_v = detail::is_freeze_policy<P>::value;

/// Sets each parameter trainable or frozen by the policy; returns how many train.
template <class Policy, class Model>
index_t apply_freeze(Model& model) {
    static_assert(is_freeze_policy_v<Policy>,
                  "a freezing policy needs `static bool trains(const vila::train::parameter_part&, std::string_view)`");
    index_t n = 0;
    for_each_parameter(model, [&](const parameter_part& part, const std::string& name, auto& p) {
        const bool on = Policy::trains(part, name);
        p.set_trainable(on);
        n += on ? 1 : 0;
    });
    return n;
}

}  // namespace vila::train
