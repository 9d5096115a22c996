// LoRA: PEFT's adapters load and give PEFT's logits (tests/fixtures/lora, make_lora.py); the
// layer's gradients against finite differences (double); merge/unmerge; save/load round trip;
// PEFT fields we do not support are refused; a LoRA fine-tune lowers the loss, keeps no state
// for the base weights and leaves them untouched; a LoRA run resumes bit for bit.
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/model/lora.hpp>
#include <vila/optim/adamw.hpp>
#include <vila/train/trainer.hpp>

#include "../support/fixtures.hpp"
#include "../support/gradcheck.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {
fs::path base_dir() { return fs::path(VILA_TEST_DATA_DIR) / "llm" / "llama_gqa"; }
fs::path lora_dir(const char* n) { return fs::path(VILA_TEST_DATA_DIR) / "lora" / n; }
tensor<std::int32_t> fixture_ids() {
    const io::safetensors_file ex(lora_dir("expected.safetensors"));
    tensor<std::int32_t> ids;
    ex.read("ids", ids);
    return ids;
}
std::vector<float> lora_flat(llm::llama<float>& m, bool adapters) {
    std::vector<float> out;
    m.for_each_parameter([&](const std::string& n, param<float>& p) {
        if (nn::is_lora_name(n) != adapters) return;
        const auto h = p.value.to_host();
        out.insert(out.end(), h.begin(), h.end());
    });
    return out;
}
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double w = 0;
    for (std::size_t i = 0; i < a.size(); ++i) w = std::max(w, double(std::abs(a[i] - b[i])));
    return w;
}
}  // namespace

TEST_CASE("PEFT adapters (rank and alpha patterns, rsLoRA, all-linear) give PEFT's logits") {
    const io::safetensors_file ex(lora_dir("expected.safetensors"));
    for (const char* name : {"peft_adapter", "peft_rslora"}) {
        CAPTURE(name);
        auto m = llm::llama<float>::load(base_dir());
        const auto cfg = lora::load_peft(m, lora_dir(name));
        tensor<float> ref;
        ex.read(std::string(name) + ".logits", ref);
        tensor<float> got = m.forward(fixture_ids());
        got.reshape(ref.shape());
        test::require_close(got, ref, 1e-4, 0, std::string(name) + " logits");
        if (std::string(name) == "peft_adapter") {
            CHECK(lora::count(m) == 6);  // q, v, down in two layers
            CHECK(m.layers[0].down_proj.lora->options.r == 2);
            CHECK(m.layers[0].v_proj.lora->options.alpha == 16);
            CHECK(cfg.dropout == doctest::Approx(0.05));
        } else {
            CHECK(m.layers[1].gate_proj.lora->options.rslora);
        }
        // merge: the same logits from the folded weights
        const auto unmerged = m.forward(fixture_ids()).to_host();
        const auto before = lora_flat(m, false);
        lora::merge(m);
        CHECK(max_diff(m.forward(fixture_ids()).to_host(), unmerged) <= 1e-5);
        lora::unmerge(m);
        CHECK(max_diff(lora_flat(m, false), before) <= 1e-6);
    }
}

TEST_CASE("LoRA linear gradients equal finite differences") {
    using B = backend::cpu;
    nn::linear<double, B> lin({5, 4, true}, "proj");
    rng g(3);
    g.fill_normal(lin.weight.value);
    g.fill_normal(lin.bias.value);
    lin.attach_lora({3, 6.0, false, 0.0}, g);
    g.fill_normal(lin.lora->Bm.value);  // a trained-looking B (zero would hide the A path)
    test::dmap<B> in;
    in["x"] = tensor<double, B>({2, 3, 5});
    g.fill_normal(in["x"]);
    in["A"] = lin.lora->A.value;
    in["Bm"] = lin.lora->Bm.value;
    auto fwd = [&](const test::dmap<B>& v) {
        lin.lora->A.value = v.at("A");
        lin.lora->Bm.value = v.at("Bm");
        tensor<double, B> y;
        lin.forward(v.at("x"), y);
        return y;
    };
    auto bwd = [&](const test::dmap<B>& v, const tensor<double, B>& dy) {
        lin.lora->A.value = v.at("A");
        lin.lora->Bm.value = v.at("Bm");
        lin.lora->A.grad.zero();
        lin.lora->Bm.grad.zero();
        typename nn::linear<double, B>::cache c;
        tensor<double, B> y, dx(v.at("x").shape());
        lin.forward(v.at("x"), y, &c);
        lin.backward(c, dy, &dx);
        return test::dmap<B>{{"x", dx}, {"A", lin.lora->A.grad}, {"Bm", lin.lora->Bm.grad}};
    };
    test::check_gradients<B>("lora linear", in, fwd, bwd);
}

TEST_CASE("LoRA dropout: gradients equal finite differences through the same mask, and inference drops nothing") {
    using B = backend::cpu;
    nn::linear<double, B> lin({6, 5, false}, "model.layers.0.mlp.up_proj");
    rng g(4);
    g.fill_normal(lin.weight.value);
    lin.attach_lora({2, 4.0, false, 0.3}, g);
    g.fill_normal(lin.lora->Bm.value);
    test::dmap<B> in;
    in["x"] = tensor<double, B>({4, 6});
    g.fill_normal(in["x"]);
    in["A"] = lin.lora->A.value;
    lin.lora->training = true;
    lin.lora->dropout_step = 7;
    auto fwd = [&](const test::dmap<B>& v) {
        lin.lora->A.value = v.at("A");
        tensor<double, B> y;
        lin.forward(v.at("x"), y);
        return y;
    };
    auto bwd = [&](const test::dmap<B>& v, const tensor<double, B>& dy) {
        lin.lora->A.value = v.at("A");
        lin.lora->A.grad.zero();
        typename nn::linear<double, B>::cache c;
        tensor<double, B> y, dx(v.at("x").shape());
        lin.forward(v.at("x"), y, &c);
        lin.backward(c, dy, &dx);
        return test::dmap<B>{{"x", dx}, {"A", lin.lora->A.grad}};
    };
    test::check_gradients<B>("lora linear with dropout", in, fwd, bwd);
    // the mask drops about p of the inputs, and another step draws another mask
    tensor<double, B> y1, y2, y3;
    lin.forward(in["x"], y1);
    lin.lora->dropout_step = 8;
    lin.forward(in["x"], y2);
    CHECK(y1.to_host() != y2.to_host());
    lin.lora->training = false;  // inference: the whole adapter, no mask
    lin.forward(in["x"], y3);
    lin.lora->options.dropout = 0;
    lin.lora->training = true;
    tensor<double, B> y4;
    lin.forward(in["x"], y4);
    CHECK(y3.to_host() == y4.to_host());
}

TEST_CASE("an adapter we save loads back to the same logits, and unsupported PEFT fields are refused") {
    const auto dir = test::scratch_dir("vila_test_lora_save");
    auto m = llm::llama<float>::load(base_dir());
    lora::load_peft(m, lora_dir("peft_adapter"));
    const auto logits = m.forward(fixture_ids()).to_host();
    lora::save_peft(m, dir, lora::config_of(m));
    auto again = llm::llama<float>::load(base_dir());
    const auto cfg = lora::load_peft(again, dir);
    CHECK(cfg.rank_pattern.size() == 2);  // the two down_proj layers' rank 2
    CHECK(again.forward(fixture_ids()).to_host() == logits);

    auto j = io::read_json(dir / "adapter_config.json");
    j["use_dora"] = true;
    io::write_json(dir / "adapter_config.json", j);
    auto third = llm::llama<float>::load(base_dir());
    CHECK_THROWS_WITH_AS(lora::load_peft(third, dir), doctest::Contains("use_dora"), config_error);
    CHECK_THROWS_WITH_AS(lora::peft_config::parse("r=8,rank=4"), doctest::Contains("unknown field 'rank'"), config_error);
    auto none = lora::peft_config::parse("r=4,targets=nothing_here");
    CHECK_THROWS_WITH_AS(lora::attach(third, none), doctest::Contains("no linear layer"), config_error);
    fs::remove_all(dir);
}

namespace {
struct stop_after {
    long long at;
    template <class M>
    bool on_step_end(M&, const train::step_info& s) { return s.step == at; }
};
template <class... C>
using lora_trainer = train::trainer<llm::llama<float>, train::freeze::lora_adapters, data::sequence_sampler, optim::adamw<float>,
                                    train::constant_warmup, C...>;
std::vector<data::sample> repeat_samples() {
    std::vector<data::sample> out;
    for (int i = 0; i < 6; ++i) {
        data::sample s;
        for (int t = 0; t < 12; ++t) s.ids.push_back(std::int32_t((i * 7 + (t % 4) * 13) % 128));
        out.push_back(s);
    }
    return out;
}
}  // namespace

TEST_CASE("a LoRA fine-tune lowers the loss, keeps no state for the base, and resumes bit for bit") {
    const auto dir = test::scratch_dir("vila_test_lora_train");
    train::param_groups g;
    g.lr = 3e-2;
    train::trainer_options o;
    o.steps = 12;
    o.save_every = 4;
    o.handle_signals = false;
    auto fresh = [] {
        auto m = llm::llama<float>::load(base_dir());
        lora::attach(m, lora::peft_config::parse("r=4,alpha=8,targets=all-linear,dropout=0.1"), 5);
        return m;
    };
    auto a = fresh();
    const auto base_before = lora_flat(a, false);
    o.run_dir = dir / "a";
    double first = 0, last = 0;
    {
        data::sequence_sampler data(repeat_samples(), 3, 1);
        lora_trainer<> t(a, optim::adamw<float>(), train::constant_warmup{0}, g, o);
        data::sequence_sampler probe(repeat_samples(), 6, 0, false);
        first = train::forward_loss(a, probe.next()).loss;
        t.fit(data);
        CHECK(t.optimizer().state_count() == std::size_t(2 * lora::count(a)));  // A and B only
        last = train::forward_loss(a, data::sequence_sampler(repeat_samples(), 6, 0, false).next()).loss;
    }
    MESSAGE("LoRA fine-tune loss " << first << " -> " << last);
    CHECK(last < 0.8 * first);
    CHECK(lora_flat(a, false) == base_before);
    std::size_t base_grads = 0;
    a.for_each_parameter([&](const std::string& n, param<float>& p) { base_grads += !nn::is_lora_name(n) && !p.grad.empty(); });
    CHECK(base_grads == 0);
    CHECK(fs::exists(dir / "a" / "final" / "adapter_model.safetensors"));

    // interrupted after step 6 (checkpoint at 4), resumed: equal to the uninterrupted run
    {
        auto b = fresh();
        o.run_dir = dir / "b";
        data::sequence_sampler data(repeat_samples(), 3, 1);
        lora_trainer<stop_after> t(b, optim::adamw<float>(), train::constant_warmup{0}, g, o, stop_after{6});
        t.fit(data);
    }
    auto c = llm::llama<float>::load(base_dir());  // adapters from another seed: the checkpoint's replace them
    lora::attach(c, lora::peft_config::parse("r=4,alpha=8,targets=all-linear,dropout=0.1"), 99);
    {
        data::sequence_sampler data(repeat_samples(), 3, 1);
        lora_trainer<> t(c, optim::adamw<float>(), train::constant_warmup{0}, g, o);
        REQUIRE(t.resume_if_possible(data));
        CHECK(t.step() == 4);
        t.fit(data);
    }
    CHECK(lora_flat(c, true) == lora_flat(a, true));
    fs::remove_all(dir);
}
