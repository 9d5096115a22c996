// The optimizers, schedules, clipping and gradient accumulation of the training engine:
// schedules and clipping against transformers/torch (tests/fixtures/train, make_train.py),
// AdamW/SGD state keyed by name (freezing, unfreezing, moving the model, save/load round trip).
#include <cmath>
#include <cstring>
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/optim/adamw.hpp>
#include <vila/optim/sgd.hpp>
#include <vila/train/trainer.hpp>

#include "../support/backends.hpp"
#include "../support/fixtures.hpp"
#include "../support/tiny_llama.hpp"

using namespace vila;

namespace {
llm::llama_config optim_tiny_config() { return test::tiny_llama_config(16, 24, 4, 37); }
llm::llama<float> tiny_model(std::uint64_t seed = 1) {
    llm::llama<float> m(optim_tiny_config());
    m.init_weights(seed);
    return m;
}
data::batch random_batch(rng& g, int n, int len) {
    data::batch b;
    for (int i = 0; i < n; ++i) {
        data::sample s;
        for (int t = 0; t < len; ++t) s.ids.push_back(std::int32_t(g.below(37)));
        b.samples.push_back(s);
    }
    return b;
}
/// A "model" of free parameters.
struct parameter_bag {
    std::vector<param<float>> ps;
    template <class F>
    void for_each_parameter(F&& f) {
        for (auto& p : ps) f(p.name, p);
    }
};
void train_step(llm::llama<float>& m, const data::batch& b) {
    m.zero_grad();
    train::forward_loss(m, b);
    m.backward_loss();
}
std::vector<float> optim_flat(llm::llama<float>& m) { return test::flat_parameters(m); }
}  // namespace

TEST_CASE("schedules equal transformers' get_*_schedule_with_warmup at every step") {
    const auto& fx = test::load_json_fixture("train/expected.json");
    std::size_t checked = 0;
    for (const auto& s : fx.at("schedules")) {
        const std::string kind = s.at("kind");
        const long long total = s.at("total"), warmup = s.at("warmup");
        CAPTURE(kind);
        CAPTURE(total);
        const auto& f = s.at("factors");
        for (std::size_t step = 0; step < f.size(); ++step) {
            double got = 0;
            if (kind == "cosine") got = train::cosine_warmup{warmup, total}.factor((long long)step);
            else if (kind == "linear") got = train::linear_warmup{warmup, total}.factor((long long)step);
            else if (kind == "constant_with_warmup") got = train::constant_warmup{warmup}.factor((long long)step);
            else got = train::constant{}.factor((long long)step);
            CHECK(std::abs(got - f[step].get<double>()) <= 1e-7);
            CHECK(std::abs(train::any_schedule{kind, warmup, total}.factor((long long)step) - got) == 0);
            ++checked;
        }
    }
    CHECK(checked > 1000);
    for (const auto& r : fx.at("warmup_ratios")) CHECK(train::warmup_steps(r.at("total"), r.at("ratio")) == r.at("warmup").get<long long>());
    CHECK_THROWS_AS((train::any_schedule{"exponential", 0, 10}.factor(0)), config_error);
}

TEST_CASE("clip_grad_norm equals torch.nn.utils.clip_grad_norm_") {
    const auto& fx = test::load_json_fixture("train/expected.json");
    for (const auto& c : fx.at("clip")) {
        parameter_bag m;  // free parameters holding the fixture's gradients
        const auto& shapes = c.at("shapes");
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            m.ps.emplace_back("p" + std::to_string(i), shapes[i].get<shape_t>());
            m.ps.back().grad = tensor<float>::from_host(shapes[i].get<shape_t>(), c.at("grads")[i].get<std::vector<float>>());
        }
        const double norm = train::clip_grad_norm(m, c.at("max_norm").get<double>());
        CHECK(norm == doctest::Approx(c.at("norm").get<double>()).epsilon(1e-6));
        for (std::size_t i = 0; i < shapes.size(); ++i) {
            const auto got = m.ps[i].grad.to_host();
            const auto want = c.at("clipped")[i].get<std::vector<float>>();
            double worst = 0;
            for (std::size_t k = 0; k < got.size(); ++k) worst = std::max(worst, std::abs(double(got[k]) - want[k]) / (1e-6 + std::abs(want[k])));
            CHECK_MESSAGE(worst <= 1e-5, "tensor ", i, " worst relative difference ", worst);
        }
    }
}

TEST_CASE("optimizer state is keyed by name: freezing, unfreezing and moving the model are safe") {
    auto m = tiny_model();
    rng g(3);
    const auto b = random_batch(g, 2, 8);
    optim::adamw<float> opt({1e-2});
    train_step(m, b);
    opt.step(m);
    const std::string q = "model.layers.0.self_attn.q_proj.weight", e = "model.embed_tokens.weight";
    CHECK(opt.steps(q) == 1);
    // freeze after the optimizer has state: the gradient buffer is gone and is never read
    m.layers[0].q_proj.weight.set_trainable(false);
    CHECK(m.layers[0].q_proj.weight.grad.empty());
    const auto frozen_before = m.layers[0].q_proj.weight.value.to_host();
    train_step(m, b);
    opt.step(m);
    CHECK(m.layers[0].q_proj.weight.value.to_host() == frozen_before);
    CHECK(opt.steps(q) == 1);
    CHECK(opt.steps(e) == 2);
    // moving the model: the optimizer holds no pointer into it
    auto moved = std::move(m);
    train_step(moved, b);
    opt.step(moved);
    CHECK(opt.steps(e) == 3);
    // unfreezing: the parameter is updated again (its own step count continues, as torch's state)
    moved.layers[0].q_proj.weight.set_trainable(true);
    train_step(moved, b);
    opt.step(moved);
    CHECK(opt.steps(q) == 2);
    CHECK(moved.layers[0].q_proj.weight.value.to_host() != frozen_before);
    // a direct update of a frozen parameter is refused, not read out of bounds
    moved.norm.weight.set_trainable(false);
    CHECK_THROWS_AS(opt.update("model.norm.weight", moved.norm.weight, 1e-3, 0), vila::error);
}

TEST_CASE("AdamW and SGD state round trip: a reloaded optimizer continues bit for bit") {
    const auto dir = test::scratch_dir("vila_test_optim_state");
    rng g(4);
    const auto b1 = random_batch(g, 2, 8), b2 = random_batch(g, 2, 8);
    auto run = [&](auto make_opt) {
        auto m = tiny_model();
        auto opt = make_opt();
        for (int s = 0; s < 3; ++s) train_step(m, b1), opt.step(m);
        opt.save(dir / "opt.safetensors");
        auto copy = m;  // the model as a checkpoint would hold it
        for (int s = 0; s < 2; ++s) train_step(m, b2), opt.step(m);
        auto reloaded = make_opt();
        reloaded.load(dir / "opt.safetensors");
        CHECK(reloaded.state_bytes() == opt.state_bytes());
        for (int s = 0; s < 2; ++s) train_step(copy, b2), reloaded.step(copy);
        CHECK(optim_flat(copy) == optim_flat(m));
    };
    run([] { return optim::adamw<float>({1e-2, 0.9, 0.999, 1e-8, 0.1}); });
    run([] { return optim::sgd<float>({1e-2, 0.9, 1e-3}); });
    // the wrong kind of state is refused
    optim::adamw<float> a;
    CHECK_THROWS_AS(a.load(dir / "opt.safetensors"), format_error);
    std::filesystem::remove_all(dir);
}

TEST_CASE("SGD with momentum is torch.optim.SGD's update") {
    param<float> p("w", {3});
    p.value = tensor<float>::from_host({3}, {1.f, -2.f, 0.5f});
    optim::sgd<float> opt({0.1, 0.9, 0.01});
    std::vector<double> w = {1, -2, 0.5}, buf(3);
    for (int s = 0; s < 4; ++s) {
        const std::vector<float> g = {0.3f * float(s + 1), -0.2f, 0.05f * float(s)};
        p.grad = tensor<float>::from_host({3}, g);
        opt.update("w", p, 0.1, 0.01);
        for (int i = 0; i < 3; ++i) {
            const double d = g[std::size_t(i)] + 0.01 * w[std::size_t(i)];
            buf[std::size_t(i)] = s == 0 ? d : 0.9 * buf[std::size_t(i)] + d;
            w[std::size_t(i)] -= 0.1 * buf[std::size_t(i)];
        }
    }
    const auto got = p.value.to_host();
    for (int i = 0; i < 3; ++i) CHECK(got[std::size_t(i)] == doctest::Approx(w[std::size_t(i)]).epsilon(1e-6));
}

TEST_CASE("gradient accumulation over k micro-batches equals one k-times-larger batch") {
    // samples of different lengths (padding) and masked labels: the loss is normalised by all
    // counted labels of the step, not per micro-batch
    rng g(5);
    std::vector<data::sample> samples;
    for (int i = 0; i < 4; ++i) {
        data::sample s;
        const int len = 5 + 3 * i;
        for (int t = 0; t < len; ++t) s.ids.push_back(std::int32_t(g.below(37)));
        s.labels = s.ids;
        for (int t = 0; t < i; ++t) s.labels[std::size_t(t)] = nn::ignore_index;
        samples.push_back(s);
    }
    auto run = [&](index_t batch, int accum) {
        auto m = tiny_model(7);
        const auto before = optim_flat(m);
        data::sequence_sampler data(samples, batch, 0, false);
        train::trainer_options o;
        o.steps = 1;
        o.grad_accum = accum;
        o.max_grad_norm = 0;
        train::trainer<llm::llama<float>, train::freeze::all_trainable, data::sequence_sampler, optim::sgd<float>, train::constant> t(
            m, optim::sgd<float>({1.0, 0.0, 0.0}), train::constant{}, train::param_groups{1.0}, o);
        t.fit(data);
        auto after = optim_flat(m);
        for (std::size_t i = 0; i < after.size(); ++i) after[i] = before[i] - after[i];  // = lr * gradient
        return after;
    };
    const auto one = run(4, 1), two = run(2, 2), four = run(1, 4);
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < one.size(); ++i) {
        worst = std::max({worst, double(std::abs(one[i] - two[i])), double(std::abs(one[i] - four[i]))});
        scale = std::max(scale, double(std::abs(one[i])));
    }
    MESSAGE("max |grad difference| " << worst << " (max |grad| " << scale << ")");
    CHECK(scale > 1e-3);
    CHECK(worst <= 1e-5);
}

TEST_CASE_TEMPLATE("the trainer (AdamW, clipping, accumulation) gives the CPU's weights on every backend", B, VILA_TEST_BACKENDS) {
    llm::llama<float, B> m(optim_tiny_config());
    llm::llama<float> ref(optim_tiny_config());
    ref.init_weights(9);
    // the same initial weights on both backends
    std::vector<tensor<float>> init;
    ref.for_each_parameter([&](const std::string&, param<float>& p) { init.push_back(p.value); });
    std::size_t i = 0;
    m.for_each_parameter([&](const std::string&, param<float, B>& p) { p.value = tensor_cast<float, B>(init[i++]); });
    rng g(6);
    std::vector<data::sample> samples;
    for (int k = 0; k < 4; ++k) samples.push_back(random_batch(g, 1, 9 + k).samples[0]);
    auto run = [&](auto& model) {
        using M = std::decay_t<decltype(model)>;
        data::sequence_sampler data(samples, 2, 1);
        train::trainer_options o;
        o.steps = 3;
        o.grad_accum = 2;
        o.max_grad_norm = 0.5;
        train::trainer<M, train::freeze::all_trainable, data::sequence_sampler, optim::adamw<float, typename M::tensor_t::backend_type>,
                       train::cosine_warmup>
            t(model, optim::adamw<float, typename M::tensor_t::backend_type>({1e-2}), train::cosine_warmup{1, 3}, train::param_groups{1e-2}, o);
        t.fit(data);
    };
    run(ref);
    run(m);
    const auto a = test::flat_parameters(ref), b = test::flat_parameters(m);
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, double(std::abs(a[k] - b[k])));
    CHECK(worst <= 1e-5);
}

TEST_CASE("parameter groups: per-part learning rates (VILA's mm_projector_lr, vision_tower_lr), no decay on biases and norms") {
    train::param_groups g;
    g.lr = 2e-5;
    g.projector_lr = 1e-4;
    g.weight_decay = 0.1;
    CHECK(g.lr_of(train::classify("mm_projector.layers.0.weight")) == 1e-4);
    CHECK(g.lr_of(train::classify("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight")) == 2e-5);  // vision_lr unset: lr
    g.vision_lr = 5e-6;
    CHECK(g.lr_of(train::classify("vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight")) == 5e-6);
    CHECK(g.lr_of(train::classify("llm.model.layers.3.mlp.up_proj.weight")) == 2e-5);
    const param<float> matrix("llm.model.layers.0.mlp.up_proj.weight", {4, 3}), bias("mm_projector.layers.0.bias", {4}),
        norm("llm.model.layers.0.input_layernorm.weight", {4}), ln("mm_projector.layers.1.weight", {12}),
        cls("vision_tower.vision_model.embeddings.class_embedding", {4});
    CHECK(g.weight_decay_of(matrix.name, matrix) == 0.1);
    CHECK(g.weight_decay_of(bias.name, bias) == 0);
    CHECK(g.weight_decay_of(norm.name, norm) == 0);
    CHECK(g.weight_decay_of(ln.name, ln) == 0);     // mlp_downsample's LayerNorm
    CHECK(g.weight_decay_of(cls.name, cls) == 0.1);  // not a norm: HF's Trainer decays it
    g.exclude_bias_and_norm = false;
    CHECK(g.weight_decay_of(bias.name, bias) == 0.1);
}
