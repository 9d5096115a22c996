// The recipe: presets carry VILA's hyper-parameters, a recipe JSON overrides them with errors that
// name the file and the key, fresh weights follow PyTorch's defaults, and a recipe runs its stages
// in order from a world-built model, skips complete stages when run again and refuses to mix two
// runs' settings in one folder.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/data/synthetic.hpp>
#include <vila/train/recipe.hpp>
#include <vila/train/world_model.hpp>

#include "../support/fixtures.hpp"

using namespace vila;
namespace fs = std::filesystem;
namespace R = vila::recipe;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

static_assert(R::pretrain_frozen_llm_stage::freeze::trains({train::part::projector}, "") &&
                  !R::pretrain_frozen_llm_stage::freeze::trains({train::part::llm}, ""),
              "Table 1's control trains the projector only");
static_assert(!R::align_stage::freeze::trains({train::part::llm}, "") && R::pretrain_stage::freeze::trains({train::part::llm}, ""),
              "stage 1 freezes the LLM, stage 2 trains it");
static_assert(R::vision_stage::freeze::trains({train::part::vision}, "") && R::vision_stage::freeze::trains({train::part::llm}, "") &&
                  R::detail::keeps_only_vision_tower<R::vision_stage>::value && !R::detail::keeps_only_vision_tower<R::align_stage>::value,
              "the world's vision stage trains a whole captioner and keeps only its tower");

TEST_CASE("recipe presets carry VILA's stages and learning rates") {
    const auto paper = R::preset("vila3", "paper");
    REQUIRE(paper.size() == 3);
    CHECK(paper[0].name == "align");
    CHECK(paper[0].lr == 1e-3);
    CHECK(paper[0].conv == "plain");
    CHECK(paper[1].name == "pretrain");
    CHECK(paper[1].lr == 5e-5);
    CHECK(paper[1].data == "mmc4+coyo");
    CHECK(paper[2].name == "sft");
    CHECK(paper[2].lr == 1e-4);
    CHECK(paper[2].data == "llava+flan");
    for (const auto& s : paper) {
        CHECK(s.warmup_ratio == 0.03);
        CHECK(s.schedule == "cosine");
    }
    CHECK(paper[1].batch_size * paper[1].grad_accum == 1024);
    const auto world = R::preset("vila3-from-scratch", "world");
    std::vector<std::string> names;
    for (const auto& s : world) names.push_back(s.name);
    CHECK(names == R::stage_names<R::vila3_from_scratch>());
    CHECK(names == std::vector<std::string>{"copy", "text", "vision", "align", "pretrain", "sft"});
    CHECK(world[3].fresh_projector);  // stage 1 aligns a new projector, as VILA's does
    CHECK(R::stage_names<R::vila3>() == std::vector<std::string>{"align", "pretrain", "sft"});
    CHECK_THROWS_AS(R::preset("vila2", "world"), config_error);
    CHECK_THROWS_AS(R::preset("vila3", "huge"), config_error);
    CHECK_THROWS_AS(R::preset("vila3-from-scratch", "paper"), config_error);
    CHECK(R::stage_dir("run", 1, "pretrain") == fs::path("run") / "02-pretrain");
}

TEST_CASE("a recipe JSON overrides any stage's settings and names the file and key of a mistake") {
    auto st = R::preset("vila3", "world");
    R::apply_overrides(st, nlohmann::json::parse(R"({"stages": {"pretrain": {"steps": 7, "lr": 1e-4, "mixture": "weighted", "data": "a:1+b:3"}}})"),
                       "r.json");
    CHECK(st[1].steps == 7);
    CHECK(st[1].lr == 1e-4);
    CHECK(st[1].mixture == "weighted");
    CHECK(st[1].data == "a:1+b:3");
    CHECK(st[0].steps == R::preset("vila3", "world")[0].steps);
    R::apply_overrides(st, nlohmann::json::parse(R"({"sft": {"conv": "llama_3"}})"), "r.json");  // the stage map alone
    CHECK(st[2].conv == "llama_3");
    auto fails = [&](const char* text, const char* needle) {
        auto copy = st;
        try {
            R::apply_overrides(copy, nlohmann::json::parse(text), "r.json");
            FAIL("no error for " << text);
        } catch (const config_error& e) {
            const std::string what = e.what();
            CHECK_MESSAGE(what.find(needle) != std::string::npos, what);
            CHECK(what.find("r.json") != std::string::npos);
        }
    };
    fails(R"({"stages": {"vision": {"steps": 3}}})", "no such stage");
    fails(R"({"stages": {"sft": {"stepz": 3}}})", "stepz: unknown setting");
    fails(R"({"stages": {"sft": {"steps": "many"}}})", "should be a number");
    fails(R"({"stages": {"sft": {"steps": 2.5}}})", "should be an integer");
    fails(R"({"stages": {"sft": {"steps": 0}}})", "outside");
    fails(R"({"stages": {"sft": {"mixture": "random"}}})", "mixture 'random'");
    fails(R"({"stages": {"sft": {"schedule": "wavy"}}})", "wavy");
    fails(R"({"stages": {"sft": {"fresh_projector": 1}}})", "true or false");
    fails(R"([1, 2])", "JSON object");
    // settings round-trip through recipe.json
    const auto back = R::from_json(R::to_json(st), "recipe.json");
    CHECK(R::to_json(back) == R::to_json(st));
}

TEST_CASE("fresh weights follow PyTorch's defaults, with N(0, 1) token embeddings") {
    vision::vit_config vc;
    vc.model_type = "clip_vision_model";
    vc.hidden_size = 32;
    vc.intermediate_size = 64;
    vc.num_hidden_layers = 1;
    vc.num_attention_heads = 2;
    vc.image_size = 32;
    vc.patch_size = 16;
    vc.hidden_act = "quick_gelu";
    llm::llama_config lc;
    lc.hidden_size = 64;
    lc.intermediate_size = 128;
    lc.num_hidden_layers = 1;
    lc.num_attention_heads = lc.num_key_value_heads = 2;
    lc.head_dim = 32;
    lc.vocab_size = 300;
    train::world_vlm m(vc, lc);
    rng gen(5);
    model::init_weights(m, gen);
    int checked = 0;
    m.for_each_parameter([&](const std::string& name, param<float>& p) {
        const auto v = p.value.to_host();
        double mean = 0, sq = 0, lo = 1e9, hi = -1e9;
        for (float x : v) {
            mean += x;
            sq += double(x) * x;
            lo = std::min(lo, double(x));
            hi = std::max(hi, double(x));
        }
        mean /= double(v.size());
        const double sd = std::sqrt(sq / double(v.size()) - mean * mean);
        CAPTURE(name);
        if (name.find("embed_tokens") != std::string::npos) {
            CHECK(sd == doctest::Approx(1.0).epsilon(0.05));
            ++checked;
        } else if (name.find("position_embedding") != std::string::npos) {
            CHECK(sd == doctest::Approx(0.02).epsilon(0.2));
        } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
            CHECK(lo == 0.0);
            CHECK(hi == 0.0);
        } else if (p.value.rank() == 1 && name.find("class_embedding") == std::string::npos) {
            CHECK(lo == 1.0);
            CHECK(hi == 1.0);
        } else if (p.value.rank() >= 2) {
            const double bound = 1.0 / std::sqrt(double(p.value.size()) / double(p.value.dim(0)));
            CHECK(lo >= -bound);
            CHECK(hi <= bound);
            CHECK(sd == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.15));  // U(-b, b) has sd b / sqrt(3)
            ++checked;
        }
    });
    CHECK(checked > 10);
    // `only`: a fresh projector leaves everything else as it was
    std::vector<float> llm_before;
    m.llm.for_each_parameter([&](const std::string&, param<float>& p) {
        const auto h = p.value.to_host();
        llm_before.insert(llm_before.end(), h.begin(), h.end());
    });
    model::init_options only;
    only.only = "mm_projector.";
    model::init_weights(m, gen, only);
    std::vector<float> llm_after;
    m.llm.for_each_parameter([&](const std::string&, param<float>& p) {
        const auto h = p.value.to_host();
        llm_after.insert(llm_after.end(), h.begin(), h.end());
    });
    CHECK(llm_before == llm_after);
}

TEST_CASE("a recipe runs its stages in order from a world-built model, skips complete stages, and refuses mixed settings") {
    const auto dir = test::scratch_dir("vila-recipe");
    data::synthetic::world_options wo;
    wo.seed = 2;
    wo.copy_rows = 50;
    wo.text_icl_rows = 50;
    wo.descriptions = 50;
    data::synthetic::write_world(dir / "world", wo);
    train::world_model_options mo;
    mo.vocab_size = 400;
    mo.llm_width = 32;
    mo.llm_mlp = 64;
    mo.vision_width = 32;
    mo.vision_mlp = 64;
    const std::size_t vocab = train::make_world_model(dir / "world", dir / "init", mo);
    CHECK(vocab == 400);
    const auto tok = tokenizer::load(dir / "init" / "llm");
    REQUIRE(tok.eos_id());
    CHECK(tok.decode(tok.encode("the red circles are blick.", false)) == "the red circles are blick.");
    CHECK(model::read_layout(dir / "init").projector_type == "mlp_downsample");
    CHECK(train::world_vlm::load(dir / "init").tokens_per_image() == 1);  // 2 x 2 patches, 2 x 2 downsampled
    CHECK(model::load_image_processor(model::read_layout(dir / "init")).shortest_edge == 32);
    CHECK_THROWS_AS(train::make_world_model(dir / "nowhere", dir / "init2", mo), io_error);

    auto stages = R::preset("vila3-from-scratch", "ci");
    for (auto& s : stages) s.steps = 2;
    R::run_options o;
    o.run_dir = dir / "run";
    o.registry = dir / "world" / "registry.json";
    o.seed = 4;
    o.workers = 0;
    o.plain_progress = true;
    std::vector<std::string> seen;
    o.after_stage = [&](const R::stage_settings& s, std::size_t i, const fs::path& model_dir) {
        seen.push_back(s.name);
        CHECK(fs::exists(model_dir / "llm" / "model.safetensors"));
        CHECK(model_dir == R::stage_dir(o.run_dir, i, s.name) / "final");
    };
    const auto r = R::run<train::world_vlm, R::vila3_from_scratch>(dir / "init", stages, o);
    CHECK(r.stopped.empty());
    CHECK(r.stages_done == 6);
    CHECK(seen == std::vector<std::string>{"copy", "text", "vision", "align", "pretrain", "sft"});
    CHECK(r.model == dir / "run" / "06-sft" / "final");
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const auto sd = R::stage_dir(o.run_dir, i, stages[i].name);
        CHECK(fs::exists(sd / "done.json"));
        CHECK(io::read_json(sd / "done.json").at("steps") == 2);
        // each stage started from the previous stage's model
        const auto from = io::read_json(sd / "config.json").at("from").get<std::string>();
        CHECK(fs::path(from) == fs::absolute(i == 0 ? dir / "init" : R::stage_dir(o.run_dir, i - 1, stages[i - 1].name) / "final"));
    }
    auto values = [](auto& part) {  // every parameter value of a model part, in order
        std::vector<float> v;
        part.for_each_parameter([&](const std::string&, param<float>& p) { for (float x : p.value.to_host()) v.push_back(x); });
        return v;
    };
    // the vision stage trained a captioner but kept only its tower: its model is the text
    // stage's LLM and projector with a new tower
    {
        auto text = train::world_vlm::load(R::stage_dir(o.run_dir, 1, "text") / "final");
        auto vision = train::world_vlm::load(R::stage_dir(o.run_dir, 2, "vision") / "final");
        CHECK(values(text.llm) == values(vision.llm));
        CHECK(values(text.projector) == values(vision.projector));
        CHECK(values(text.vision) != values(vision.vision));
        CHECK(fs::exists(R::stage_dir(o.run_dir, 2, "vision") / "final" / "llm" / "tokenizer.json"));
        CHECK(fs::exists(R::stage_dir(o.run_dir, 2, "vision") / "final" / "vision_tower" / "preprocessor_config.json"));
    }
    // the frozen parts did not move: stage 1 (align) changed only the projector
    {
        auto before = train::world_vlm::load(R::stage_dir(o.run_dir, 2, "vision") / "final");
        auto after = train::world_vlm::load(R::stage_dir(o.run_dir, 3, "align") / "final");
        CHECK(values(before.llm) == values(after.llm));
        CHECK(values(before.projector) != values(after.projector));
    }
    const auto metrics_before = slurp(dir / "run" / "05-pretrain" / "metrics.jsonl");
    seen.clear();
    const auto again = R::run<train::world_vlm, R::vila3_from_scratch>(dir / "init", stages, o);
    CHECK(again.stages_done == 6);
    CHECK(seen.size() == 6);  // complete stages are reported again, not trained again
    CHECK(slurp(dir / "run" / "05-pretrain" / "metrics.jsonl") == metrics_before);

    auto other = stages;
    other[4].lr = 1.0;
    auto run5 = [&](const std::vector<R::stage_settings>& st) { R::run<train::world_vlm, R::vila3_from_scratch>(dir / "init", st, o); };
    auto run3 = [&](const std::vector<R::stage_settings>& st) { R::run<train::world_vlm, R::vila3>(dir / "init", st, o); };
    CHECK_THROWS_WITH_AS(run5(other), doctest::Contains("other settings"), config_error);
    CHECK_THROWS_WITH_AS(run3(stages), doctest::Contains("stage settings for 3 stages"), config_error);
    auto misnamed = R::preset("vila3", "ci");
    std::swap(misnamed[0], misnamed[1]);
    o.run_dir = dir / "run2";
    CHECK_THROWS_WITH_AS(run3(misnamed), doctest::Contains("stage 1 is 'align'"), config_error);
    fs::remove_all(dir);
}
