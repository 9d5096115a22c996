// The trainer: real training lowers the loss; the run folder (checkpoints, latest, keep-last,
// final, metrics); resume continues bit for bit; the NaN guard stops before a bad update.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/optim/adamw.hpp>
#include <vila/train/trainer.hpp>

#include "../support/fixtures.hpp"
#include "../support/tiny_llama.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {
llm::llama_config tiny_config() { return test::tiny_llama_config(32, 48, 8, 23); }
/// Periodic sequences (learnable): sample i repeats a pattern of period 3..5.
std::vector<data::sample> periodic_samples(int n, int len) {
    std::vector<data::sample> out;
    rng g(11);
    for (int i = 0; i < n; ++i) {
        const int period = 3 + i % 3;
        std::vector<std::int32_t> pat;
        for (int k = 0; k < period; ++k) pat.push_back(std::int32_t(g.below(23)));
        data::sample s;
        for (int t = 0; t < len; ++t) s.ids.push_back(pat[std::size_t(t % period)]);
        out.push_back(s);
    }
    return out;
}
std::vector<float> flat(llm::llama<float>& m) { return test::flat_parameters(m); }
/// Stops the run after `at` steps (a crash stand-in for the in-process resume test).
struct stop_at {
    long long at;
    template <class M>
    bool on_step_end(M&, const train::step_info& s) { return s.step == at; }
};
struct loss_log {
    std::vector<double>* losses;
    template <class M>
    bool on_step_end(M&, const train::step_info& s) {
        losses->push_back(s.loss);
        return false;
    }
};

struct poison {  // corrupts a weight after step 4
    template <class M>
    bool on_step_end(M& model, const train::step_info& s) {
        if (s.step == 4) model.layers[1].up_proj.weight.value.fill(std::nanf(""));
        return false;
    }
};

using model_t = llm::llama<float>;
template <class... C>
using text_trainer = train::trainer<model_t, train::freeze::all_trainable, data::sequence_sampler, optim::adamw<float>, train::cosine_warmup, C...>;

train::trainer_options options(const fs::path& run, long long steps) {
    train::trainer_options o;
    o.steps = steps;
    o.run_dir = run;
    o.save_every = 3;
    o.keep_last = 2;
    o.handle_signals = false;
    return o;
}
train::param_groups groups() {
    train::param_groups g;
    g.lr = 1e-2;
    g.weight_decay = 0.01;
    return g;
}
}  // namespace

TEST_CASE("training lowers the loss and writes a run folder: checkpoints, latest, keep-last, final, metrics") {
    const auto run = test::scratch_dir("vila_test_trainer_run");
    model_t m(tiny_config());
    m.init_weights(1);
    data::sequence_sampler data(periodic_samples(12, 24), 4, 3);
    std::vector<double> losses;
    std::vector<long long> evaluated;
    text_trainer<train::metrics_jsonl, loss_log, train::nan_guard, train::eval_every<model_t>> t(
        m, optim::adamw<float>(), train::cosine_warmup{2, 40}, groups(), options(run, 40), train::metrics_jsonl{run / "metrics.jsonl"},
        loss_log{&losses}, train::nan_guard{}, train::eval_every<model_t>{15, [&](model_t&, long long step) { evaluated.push_back(step); }});
    const auto r = t.fit(data);
    CHECK(evaluated == std::vector<long long>{15, 30, 40});
    CHECK(r.stopped.empty());
    CHECK(r.step == 40);
    REQUIRE(losses.size() == 40);
    MESSAGE("loss " << losses.front() << " -> " << losses.back());
    CHECK(losses.back() < 0.5 * losses.front());
    const auto cps = train::list_checkpoints(run);
    REQUIRE(cps.size() == 2);  // keep_last
    CHECK(cps.back().first == 40);
    CHECK(cps.front().first == 39);
    CHECK(train::latest_checkpoint(run) == run / "checkpoints" / "step-40");
    for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"})
        CHECK_MESSAGE(fs::exists(run / "checkpoints" / "step-40" / f), f);
    CHECK(fs::exists(run / "final" / "model.safetensors"));
    CHECK(!fs::exists(run / "final" / "optimizer.safetensors"));
    auto reloaded = model_t::load(run / "final");
    CHECK(flat(reloaded) == flat(m));
    std::ifstream metrics(run / "metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(metrics, line)) ++lines;
    CHECK(lines == 40);
    const auto state = io::read_json(run / "checkpoints" / "step-40" / "trainer_state.json");
    CHECK(state.at("format_version") == train::run_format_version);
    CHECK(state.at("library_version") == vila::version());
    fs::remove_all(run);
}

TEST_CASE("a resumed run equals the uninterrupted one bit for bit") {
    const auto dir = test::scratch_dir("vila_test_trainer_resume");
    const auto samples = periodic_samples(10, 16);
    auto fresh = [] {
        model_t m(tiny_config());
        m.init_weights(2);
        return m;
    };
    // uninterrupted: 10 steps
    model_t a = fresh();
    {
        data::sequence_sampler data(samples, 3, 9);
        text_trainer<> t(a, optim::adamw<float>(), train::cosine_warmup{2, 10}, groups(), options(dir / "a", 10));
        t.fit(data);
    }
    // interrupted after step 7 (last checkpoint: step 6), then resumed in a fresh process state
    {
        model_t b = fresh();
        data::sequence_sampler data(samples, 3, 9);
        text_trainer<stop_at> t(b, optim::adamw<float>(), train::cosine_warmup{2, 10}, groups(), options(dir / "b", 10), stop_at{7});
        const auto r = t.fit(data);
        CHECK(r.step == 7);
        CHECK(!r.stopped.empty());
    }
    CHECK(train::latest_checkpoint(dir / "b") == dir / "b" / "checkpoints" / "step-6");
    model_t c(tiny_config());  // uninitialised: everything comes from the checkpoint
    data::sequence_sampler data(samples, 3, 9);
    text_trainer<> t(c, optim::adamw<float>(), train::cosine_warmup{2, 10}, groups(), options(dir / "b", 10));
    REQUIRE(t.resume_if_possible(data));
    CHECK(t.step() == 6);
    t.fit(data);
    CHECK(t.step() == 10);
    CHECK(flat(c) == flat(a));
    fs::remove_all(dir);
}

TEST_CASE("the NaN guard stops before the update, naming the step and the part, and the last good checkpoint stays") {
    const auto run = test::scratch_dir("vila_test_trainer_nan");
    model_t m(tiny_config());
    m.init_weights(3);
    data::sequence_sampler data(periodic_samples(6, 12), 2, 1);
    text_trainer<poison, train::nan_guard> t(m, optim::adamw<float>(), train::cosine_warmup{0, 10}, groups(), options(run, 10), poison{},
                                             train::nan_guard{});
    const auto r = t.fit(data);
    CHECK(r.step == 4);
    CHECK(r.stopped.find("step 5") != std::string::npos);
    CHECK(r.stopped.find("llm") != std::string::npos);
    CHECK(train::latest_checkpoint(run) == run / "checkpoints" / "step-3");
    CHECK(!fs::exists(run / "final"));
    fs::remove_all(run);
}

TEST_CASE("a run folder of another format version is refused in one line") {
    const auto run = test::scratch_dir("vila_test_trainer_version");
    model_t m(tiny_config());
    m.init_weights(4);
    data::sequence_sampler data(periodic_samples(4, 8), 2);
    text_trainer<> t(m, optim::adamw<float>(), train::cosine_warmup{0, 3}, groups(), options(run, 3));
    t.fit(data);
    const auto state_file = run / "checkpoints" / "step-3" / "trainer_state.json";
    auto st = io::read_json(state_file);
    st["format_version"] = 99;
    io::write_json(state_file, st);
    text_trainer<> t2(m, optim::adamw<float>(), train::cosine_warmup{0, 3}, groups(), options(run, 3));
    CHECK_THROWS_WITH_AS(t2.resume_if_possible(data), doctest::Contains("run format 99"), config_error);
    fs::remove_all(run);
}

TEST_CASE("a trainer_state.json with a wrong type or a negative step is refused before anything loads") {
    const auto run = test::scratch_dir("vila_test_trainer_state");
    model_t m(tiny_config());
    m.init_weights(5);
    data::sequence_sampler data(periodic_samples(4, 8), 2);
    text_trainer<> t(m, optim::adamw<float>(), train::cosine_warmup{0, 3}, groups(), options(run, 3));
    t.fit(data);
    const auto state_file = run / "checkpoints" / "step-3" / "trainer_state.json";
    const auto good = io::read_json(state_file);
    auto st = good;
    st["step"] = "three";
    io::write_json(state_file, st);
    text_trainer<> t2(m, optim::adamw<float>(), train::cosine_warmup{0, 3}, groups(), options(run, 3));
    CHECK_THROWS_WITH_AS(t2.resume_if_possible(data), doctest::Contains("trainer_state.json"), format_error);
    st = good;
    st["step"] = -4;
    io::write_json(state_file, st);
    CHECK_THROWS_WITH_AS(t2.resume_if_possible(data), doctest::Contains("negative"), format_error);
    st = good;
    st["sampler"]["epoch"] = "x";
    io::write_json(state_file, st);
    CHECK_THROWS_WITH_AS(t2.resume_if_possible(data), doctest::Contains("sampler"), format_error);
    fs::remove_all(run);
}
