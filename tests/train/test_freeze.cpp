// Freezing policies: parts from names, what a frozen part costs (nothing), gradients through a
// frozen LLM to the projector (VILA's stage 1), and changing the policy between stages.
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/optim/adamw.hpp>
#include <vila/train/trainer.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
using vila_model = vlm<vision::siglip, projector::mlp_downsample, llm::llama>;
std::filesystem::path freeze_vlm_dir() { return std::filesystem::path(VILA_TEST_DATA_DIR) / "vlm" / "vila"; }

struct only_layer_1 {  // a predicate policy: the LLM's decoder layer 1 alone
    static bool trains(const train::parameter_part& p, std::string_view) { return p.module == train::part::llm && p.layer == 1; }
};

data::batch fixture_batch() {
    const io::safetensors_file ex(freeze_vlm_dir() / "expected.safetensors");
    tensor<std::int32_t> ids;
    ex.read("ids", ids);
    data::batch b;
    b.samples.push_back({ids.to_host(), {}, 2});
    ex.read("pixels", b.pixels);
    return b;
}

template <class Pred>
std::size_t count_params(vila_model& m, Pred pred) {
    std::size_t n = 0;
    train::for_each_parameter(m, [&](const train::parameter_part& part, const std::string& name, param<float>& p) { n += pred(part, name, p); });
    return n;
}
}  // namespace

static_assert(train::is_freeze_policy_v<train::freeze::pretrain>);
static_assert(train::is_freeze_policy_v<train::freeze::predicate<only_layer_1>>);
static_assert(!train::is_freeze_policy_v<int>);
static_assert(!train::is_freeze_policy_v<data::sequence_sampler>);

TEST_CASE("parameter parts follow the VILA and HF names") {
    using K = train::parameter_part::kind;
    auto c = train::classify("llm.model.layers.12.mlp.up_proj.weight");
    CHECK((c.module == train::part::llm && c.what == K::layer && c.layer == 12));
    c = train::classify("model.embed_tokens.weight");
    CHECK((c.module == train::part::llm && c.what == K::embedding));
    CHECK(train::classify("llm.lm_head.weight").what == K::head);
    CHECK(train::classify("llm.model.norm.weight").what == K::norm);
    c = train::classify("vision_tower.vision_model.encoder.layers.3.layer_norm1.bias");
    CHECK((c.module == train::part::vision && c.what == K::layer && c.layer == 3));
    CHECK(train::classify("vision_tower.vision_model.embeddings.patch_embedding.weight").what == K::embedding);
    CHECK(train::classify("vision_tower.vision_model.post_layernorm.weight").what == K::norm);
    CHECK(train::classify("mm_projector.layers.1.weight").module == train::part::projector);
}

TEST_CASE("stage 1 (align_projector): frozen parts hold no gradient or optimizer state, and gradients reach the projector through the frozen LLM") {
    auto m = vila_model::load(freeze_vlm_dir());
    const index_t n = train::apply_freeze<train::freeze::align_projector>(m);
    CHECK(n == index_t(count_params(m, [](auto part, auto&, auto&) { return part.module == train::part::projector; })));
    CHECK(count_params(m, [](auto part, auto&, auto& p) { return part.module != train::part::projector && !p.grad.empty(); }) == 0);
    const auto b = fixture_batch();
    m.zero_grad();
    train::forward_loss(m, b);
    m.backward_loss();
    CHECK(count_params(m, [](auto part, auto&, auto& p) { return part.module == train::part::projector && train::sum_of_squares(p.grad) > 0; }) ==
          std::size_t(n));
    optim::adamw<float> opt({1e-3});
    opt.step(m);
    CHECK(opt.state_count() == std::size_t(n));
    std::size_t projector_bytes = 0;
    m.projector.for_each_parameter([&](const std::string&, param<float>& p) { projector_bytes += std::size_t(p.value.size()) * 8; });
    CHECK(opt.state_bytes() == projector_bytes);

    // stage 2 on the same model and optimizer: the LLM now trains and gets fresh state
    const index_t n2 = train::apply_freeze<train::freeze::pretrain>(m);
    CHECK(n2 > n);
    m.zero_grad();
    train::forward_loss(m, b);
    m.backward_loss();
    opt.step(m);
    CHECK(opt.state_count() == std::size_t(n2));
    CHECK(opt.steps("mm_projector.layers.2.weight") == 2);
    CHECK(opt.steps("llm.model.layers.0.mlp.up_proj.weight") == 1);
    CHECK(m.vision.patch_weight.grad.empty());

    // a predicate policy
    CHECK(train::apply_freeze<train::freeze::predicate<only_layer_1>>(m) == 9);  // two norms + seven projections
}

TEST_CASE("the trainer refuses a policy that trains nothing") {
    llm::llama_config c;
    c.hidden_size = 8, c.intermediate_size = 8, c.num_hidden_layers = 1, c.num_attention_heads = 2, c.num_key_value_heads = 2;
    c.head_dim = 4, c.vocab_size = 11;
    llm::llama<float> m(c);
    data::sequence_sampler s({{{1, 2, 3}, {}, -1}}, 1);
    using t = train::trainer<llm::llama<float>, train::freeze::align_projector, data::sequence_sampler, optim::adamw<float>, train::constant>;
    CHECK_THROWS_WITH_AS(t(m, optim::adamw<float>(), train::constant{}, {}, {}), doctest::Contains("no parameter to train"), config_error);
}
