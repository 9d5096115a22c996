// vila/train/recipe.hpp — VILA's training recipe: stages run one after another, each a trainer
// composed at compile time (its freezing policy) and configured at run time (data mixture,
// template, steps, learning rates per part, schedule), each starting from the previous stage's
// model.
//
//   namespace R = vila::recipe;
//   auto stages = R::preset("vila3", "world");          // VILA's hyper-parameters, toy-scaled
//   R::apply_overrides(stages, recipe_json, "my.json");  // any field of any stage
//   R::run<model_t, R::vila3>(init_dir, stages, {run_dir, registry});
//
// The stages (VILA, section 3 of REFERENCE.md):
//   align     stage 1: the projector alone on image-text pairs, `plain` template (gradients
//             still flow through the frozen LLM to the projector)
//   pretrain  stage 2: projector + LLM on interleaved documents + pairs (the paper: updating
//             the LLM here is what gives in-context learning); pretrain_frozen_llm is Table 1's
//             other arm
//   sft       stage 3: projector + LLM on visual instructions blended with text-only ones
// and, for a model trained from nothing on the synthetic world (no pretrained CLIP or LLM
// offline), three stages before them:
//   copy      stage 0a: the LLM alone on copy sequences (induction heads form)
//   text      stage 0b: the LLM alone on text (text in-context episodes, facts, descriptions,
//             some copy)
//   vision    the vision tower by captioning, trained with a copy of the LLM and projector that
//             is then dropped (a captioning stand-in for CLIP's pre-training): the stage's model
//             is its input with the new tower; stage 1 then starts a fresh projector
// Folders: RUN/recipe.json (the settings), RUN/NN-name/ per stage (the trainer's run folder:
// metrics.jsonl, checkpoints/, final/) and RUN/NN-name/done.json once the stage is complete. Run
// the same call again after an interruption: complete stages are skipped, the interrupted one
// resumes from its last checkpoint (bit for bit on the CPU backend), later ones follow.
#pragma once
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../data/open.hpp"
#include "../io/json.hpp"
#include "../model/checkpoint.hpp"
#include "../model/init.hpp"
#include "../optim/adamw.hpp"
#include "trainer.hpp"

namespace vila::train::recipe {

// --- the stages as types: a name and a freezing policy ----------------------------------------

/// Stage 0a: the LLM on copy sequences alone, until induction heads form (measured on the world:
/// copying fresh sequences goes from chance to 93% in 2000 steps of copy alone, and stays at
/// chance after 1500 steps of the mixed text data with 10% copy; SCIENCE.md's prototype also
/// began with 500 steps of copy).
struct copy_stage {
    static constexpr const char* name = "copy";
    using freeze = freeze::llm_only;
};
struct text_stage {
    static constexpr const char* name = "text";
    using freeze = freeze::llm_only;
};
/// The vision tower learns by captioning with its own copy of the LLM and projector, all three
/// trained; only the tower carries on (`keeps_only_vision_tower`): the next stage gets the text
/// stage's LLM back, as a CLIP tower arrives without the text model it was trained with. (Through
/// the frozen text LLM instead, the captioning loss stayed ~10x higher on the world: 0.75 against
/// 0.07 nats per token after 800 steps, and the tower learnt little.)
struct vision_stage {
    static constexpr const char* name = "vision";
    using freeze = freeze::all_trainable;
    static constexpr bool keeps_only_vision_tower = true;
};
struct align_stage {
    static constexpr const char* name = "align";
    using freeze = freeze::align_projector;
};
struct pretrain_stage {
    static constexpr const char* name = "pretrain";
    using freeze = freeze::pretrain;
};
/// Table 1's control: stage 2's data with the LLM frozen (only the projector learns).
struct pretrain_frozen_llm_stage {
    static constexpr const char* name = "pretrain";
    using freeze = freeze::align_projector;
};
struct sft_stage {
    static constexpr const char* name = "sft";
    using freeze = freeze::sft;
};

namespace detail {
/// Whether a stage type keeps only its trained vision tower (the rest of the model comes back
/// from the stage's input); false unless the type says so.
template <class Stage, class = void>
struct keeps_only_vision_tower : std::false_type {};
template <class Stage>
struct keeps_only_vision_tower<Stage, std::void_t<decltype(Stage::keeps_only_vision_tower)>>
    : std::integral_constant<bool, Stage::keeps_only_vision_tower> {};

/// A null pointer per stage type: the stages as values, to fold over without constructing them.
template <class... S>
std::tuple<S*...> stage_pointers(std::tuple<S...>*) {
    return {static_cast<S*>(nullptr)...};
}
}  // namespace detail

/// A recipe: its stages in order.
template <class... Stages>
struct stages {
    static constexpr std::size_t size = sizeof...(Stages);
    using list = std::tuple<Stages...>;
};
using vila3 = stages<align_stage, pretrain_stage, sft_stage>;
/// The synthetic world's full pipeline from random weights.
using vila3_from_scratch = stages<copy_stage, text_stage, vision_stage, align_stage, pretrain_stage, sft_stage>;
using vila3_frozen_llm_from_scratch = stages<copy_stage, text_stage, vision_stage, align_stage, pretrain_frozen_llm_stage, sft_stage>;

// --- what each stage does at run time -----------------------------------------------------------

struct stage_settings {
    std::string name;                // the stage type's name (checked)
    std::string data;                // a mixture "a+b" / "a:0.1+b:0.9" of registry names or paths
    std::string mixture = "natural"; // natural | weighted | sequential
    std::string conv = "plain";      // chat template for conversations (vicuna_v1, llama_3, hermes-2, plain)
    long long steps = 100;
    long long batch_size = 8;
    long long grad_accum = 1;
    double lr = 2e-5, projector_lr = 0, vision_lr = 0;  // 0: lr
    double warmup_ratio = 0.03;
    std::string schedule = "cosine";
    double weight_decay = 0;
    double max_grad_norm = 1.0;
    long long max_length = 0;        // spliced tokens per sample (0: the LLM's max_position_embeddings)
    long long save_every = 0;        // 0: a tenth of the steps
    bool fresh_projector = false;    // start the projector from new random weights (stage 1 after `vision`)

    nlohmann::json to_json() const {
        nlohmann::json j;
        j["name"] = name;
        j["data"] = data;
        j["mixture"] = mixture;
        j["conv"] = conv;
        j["steps"] = steps;
        j["batch_size"] = batch_size;
        j["grad_accum"] = grad_accum;
        j["lr"] = lr;
        j["projector_lr"] = projector_lr;
        j["vision_lr"] = vision_lr;
        j["warmup_ratio"] = warmup_ratio;
        j["schedule"] = schedule;
        j["weight_decay"] = weight_decay;
        j["max_grad_norm"] = max_grad_norm;
        j["max_length"] = max_length;
        j["save_every"] = save_every;
        j["fresh_projector"] = fresh_projector;
        return j;
    }
    /// Sets the fields `j` names; an unknown key or a wrong type is a config_error naming `where`.
    void apply(const nlohmann::json& j, const std::string& where) {
        if (!j.is_object()) throw config_error(where + ": a stage's settings are an object {\"steps\": 100, ...}");
        for (const auto& item : j.items()) {  // (no structured binding: clang 14 cannot capture one in the lambdas)
            const std::string k = item.key();
            const nlohmann::json& v = item.value();
            const std::string at = where + ": " + k;
            auto num = [&](double lo, double hi) {
                if (!v.is_number()) throw config_error(at + " should be a number, got " + v.dump());
                const double x = v.get<double>();
                if (!(x >= lo && x <= hi)) throw config_error(at + " = " + v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
                return x;
            };
            auto whole = [&](double lo, double hi) {
                const double x = num(lo, hi);
                if (x != double((long long)x)) throw config_error(at + " should be an integer, got " + v.dump());
                return (long long)x;
            };
            auto str = [&]() {
                if (!v.is_string()) throw config_error(at + " should be a string, got " + v.dump());
                return v.get<std::string>();
            };
            if (k == "name") {
                if (str() != name) throw config_error(at + " is '" + str() + "', this stage is '" + name + "'");
            } else if (k == "data") data = str();
            else if (k == "mixture") mixture = str();
            else if (k == "conv") conv = str();
            else if (k == "schedule") schedule = str();
            else if (k == "steps") steps = whole(1, 1e12);
            else if (k == "batch_size") batch_size = whole(1, 1 << 20);
            else if (k == "grad_accum") grad_accum = whole(1, 1 << 20);
            else if (k == "lr") lr = num(0, 10);
            else if (k == "projector_lr") projector_lr = num(0, 10);
            else if (k == "vision_lr") vision_lr = num(0, 10);
            else if (k == "warmup_ratio") warmup_ratio = num(0, 1);
            else if (k == "weight_decay") weight_decay = num(0, 10);
            else if (k == "max_grad_norm") max_grad_norm = num(0, 1e12);
            else if (k == "max_length") max_length = whole(0, 1 << 24);
            else if (k == "save_every") save_every = whole(0, 1e12);
            else if (k == "fresh_projector") {
                if (!v.is_boolean()) throw config_error(at + " should be true or false");
                fresh_projector = v.get<bool>();
            } else {
                throw config_error(at + ": unknown setting (known: data, mixture, conv, steps, batch_size, grad_accum, lr, projector_lr, "
                                        "vision_lr, warmup_ratio, schedule, weight_decay, max_grad_norm, max_length, save_every, fresh_projector)");
            }
        }
        if (mixture != "natural" && mixture != "weighted" && mixture != "sequential")
            throw config_error(where + ": mixture '" + mixture + "' is not natural, weighted or sequential");
        try {
            any_schedule{schedule, 0, 1}.factor(0);
        } catch (const config_error& e) {
            throw config_error(where + ": " + e.what());
        }
    }
};

/// Presets. `recipe`: "vila3" (stages 1-3 from a pretrained VLM) or "vila3-from-scratch" (the
/// world's five stages; "vila3-frozen-llm-from-scratch" the same with Table 1's frozen LLM in
/// stage 2). `size`:
///   paper  VILA's learning rates (1e-3, 5e-5, 1e-4), warmup ratio 0.03, cosine, and its data
///          names (coyo, mmc4, llava, flan: give them in a registry); steps and batches are yours
///          to set in the recipe JSON (the defaults are a start, not VILA's epoch counts)
///   world  calibrated for the synthetic world on two CPU cores (the demo)
///   ci     the world's stages cut to a few steps (tests)
inline std::vector<stage_settings> preset(const std::string& recipe, const std::string& size) {
    const bool scratch = recipe == "vila3-from-scratch" || recipe == "vila3-frozen-llm-from-scratch";
    if (recipe != "vila3" && !scratch)
        throw config_error("recipe '" + recipe + "' is not vila3, vila3-from-scratch or vila3-frozen-llm-from-scratch");
    if (size != "paper" && size != "world" && size != "ci") throw config_error("recipe size '" + size + "' is not paper, world or ci");
    auto make = [](const char* name, const char* data, const char* conv, long long steps, long long batch, double lr) {
        stage_settings s;
        s.name = name;
        s.data = data;
        s.conv = conv;
        s.steps = steps;
        s.batch_size = batch;
        s.lr = lr;
        return s;
    };
    std::vector<stage_settings> out;
    if (size == "paper") {
        if (scratch) throw config_error("recipe size 'paper' is for pretrained models: use vila3");
        out = {make("align", "coyo", "plain", 2000, 16, 1e-3), make("pretrain", "mmc4+coyo", "plain", 10000, 16, 5e-5),
               make("sft", "llava+flan", "vicuna_v1", 5000, 16, 1e-4)};
        for (auto& s : out) s.grad_accum = s.name == "pretrain" ? 64 : s.name == "align" ? 16 : 8;  // 256 / 1024 / 128 samples
        return out;
    }
    const bool ci = size == "ci";
    if (scratch) {
        // a constant rate: induction heads form in a jump (here between steps 850 and 1000 at
        // 2e-3), and a cosine that decays before it has happened never gets there
        stage_settings copy = make("copy", "copy", "plain", ci ? 3 : 1200, ci ? 4 : 32, 2e-3);
        copy.schedule = "constant_with_warmup";
        copy.max_length = 128;
        stage_settings text = make("text", "copy:0.1+text_icl:0.5+knowledge:0.25+descriptions:0.15", "plain", ci ? 3 : 1500, ci ? 4 : 32, 2e-3);
        text.mixture = "weighted";
        text.max_length = 128;
        stage_settings vision = make("vision", "coyo", "plain", ci ? 3 : 800, ci ? 2 : 16, 1e-3);
        out = {copy, text, vision};
    }
    stage_settings align = make("align", "coyo", "plain", ci ? 3 : 150, ci ? 2 : 16, 1e-3);
    align.fresh_projector = scratch;
    out.push_back(align);
    out.push_back(make("pretrain", "mmc4+coyo", "plain", ci ? 3 : 400, ci ? 2 : 16, 5e-4));
    out.push_back(make("sft", "llava+flan", "vicuna_v1", ci ? 3 : 200, ci ? 2 : 16, 5e-4));
    return out;
}

/// Applies a recipe JSON {"stages": {"pretrain": {"steps": 300}, ...}} (or the stage map alone).
inline void apply_overrides(std::vector<stage_settings>& stages, const nlohmann::json& j, const std::string& file) {
    if (!j.is_object()) throw config_error(file + ": a recipe file is a JSON object {\"stages\": {\"<stage>\": {...}}}");
    const nlohmann::json& map = j.contains("stages") ? j["stages"] : j;
    if (!map.is_object()) throw config_error(file + ": \"stages\" should be an object keyed by stage name");
    for (const auto& [name, v] : map.items()) {
        bool found = false;
        for (auto& s : stages)
            if (s.name == name) {
                s.apply(v, file + ": stages." + name);
                found = true;
            }
        if (!found) {
            std::string known;
            for (const auto& s : stages) known += (known.empty() ? "" : ", ") + s.name;
            throw config_error(file + ": stages." + name + ": this recipe has no such stage (it has " + known + ")");
        }
    }
}

inline nlohmann::json to_json(const std::vector<stage_settings>& stages) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& s : stages) a.push_back(s.to_json());
    return a;
}
inline std::vector<stage_settings> from_json(const nlohmann::json& a, const std::string& file) {
    if (!a.is_array()) throw config_error(file + ": \"stages\" should be a list");
    std::vector<stage_settings> out;
    for (const auto& j : a) {
        stage_settings s;
        if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) throw config_error(file + ": every stage needs a \"name\"");
        s.name = j["name"].get<std::string>();
        s.apply(j, file + ": " + s.name);
        out.push_back(std::move(s));
    }
    return out;
}

// --- running -------------------------------------------------------------------------------------

struct run_options {
    std::filesystem::path run_dir;   // RUN: recipe.json and one folder per stage
    std::filesystem::path registry;  // the data registry the stages' mixtures name
    std::uint64_t seed = 0;
    int workers = 1;                 // loader threads per stage
    bool plain_progress = false;     // a line every few steps instead of a redrawn bar
    long long progress_every = 25;
    /// Called after each stage completes (also for a stage found complete), with its model folder.
    std::function<void(const stage_settings&, std::size_t index, const std::filesystem::path& model_dir)> after_stage;
};

/// What a finished (or interrupted) recipe left.
struct run_result {
    std::filesystem::path model;     // the last complete stage's final/ model ("" if none)
    std::size_t stages_done = 0;
    std::string stopped;             // "" when every stage completed
    double seconds = 0;
};

/// The names of a recipe's stages, in order.
template <class Recipe>
std::vector<std::string> stage_names() {
    return std::apply([](auto*... s) { return std::vector<std::string>{std::remove_pointer_t<decltype(s)>::name...}; },
                      detail::stage_pointers(static_cast<typename Recipe::list*>(nullptr)));
}

/// The folder of stage `index` (0-based) named `name`: RUN/01-align.
inline std::filesystem::path stage_dir(const std::filesystem::path& run_dir, std::size_t index, const std::string& name) {
    char b[16];
    std::snprintf(b, sizeof b, "%02zu-", index + 1);
    return run_dir / (b + name);
}

namespace detail {

template <class Model, class Stage>
std::string run_stage(const std::filesystem::path& from, const stage_settings& st, std::size_t index, const run_options& o,
                      std::filesystem::path& model_out) {
    namespace fs = std::filesystem;
    const fs::path dir = stage_dir(o.run_dir, index, st.name);
    if (fs::exists(dir / "done.json") && fs::is_directory(dir / "final")) {
        std::printf("stage %zu %s: complete, skipped (%s)\n", index + 1, st.name.c_str(), dir.c_str());
        model_out = dir / "final";
        return {};
    }
    const model::layout L = model::read_layout(from);
    Model m = Model::load(L);
    if (st.fresh_projector) {
        rng gen(o.seed, 0x9e3779b9ULL + index);
        model::init_options io;
        io.only = "mm_projector.";
        model::init_weights(m, gen, io);
    }
    const auto tok = tokenizer::load(L.tokenizer_dir());
    const auto processor = model::load_image_processor(L);
    std::vector<data::mixture_entry> sources;
    for (const auto& spec : data::parse_mixture(st.data, o.registry)) sources.push_back({spec.name, data::open_source(spec), spec.weight});
    data::render_options r;
    r.conv_template = st.conv;
    r.image_token = m.image_token_id;
    r.tokens_per_image = m.tokens_per_image();
    r.max_length = st.max_length > 0 ? index_t(st.max_length) : m.llm.config.max_position_embeddings;
    data::mixture_options mo;
    mo.batch_size = index_t(st.batch_size);
    mo.seed = o.seed + 1000 * (index + 1);
    mo.workers = o.workers;
    mo.prefetch = index_t(2 * st.batch_size * st.grad_accum);
    data::any_mixture_sampler sampler(st.mixture, std::move(sources), tok, r, &processor, mo);

    trainer_options to;
    to.steps = st.steps;
    to.grad_accum = int(st.grad_accum);
    to.max_grad_norm = st.max_grad_norm;
    to.run_dir = dir;
    to.save_every = st.save_every > 0 ? st.save_every : std::max(1LL, st.steps / 10);
    to.keep_last = 1;
    to.tokenizer_dir = L.tokenizer_dir();
    to.preprocessor_file = L.preprocessor_file();
    to.save_final = !keeps_only_vision_tower<Stage>::value;  // that stage writes its own final/ below
    to.run_config = st.to_json();
    to.run_config["from"] = fs::absolute(from).string();
    param_groups g;
    g.lr = st.lr;
    g.projector_lr = st.projector_lr;
    g.vision_lr = st.vision_lr;
    g.weight_decay = st.weight_decay;
    optim::adamw_options ao;
    ao.lr = st.lr;
    ao.weight_decay = st.weight_decay;
    progress bar;
    bar.every = o.progress_every;
    bar.force_plain = o.plain_progress;
    bar.label = "stage " + std::to_string(index + 1) + " " + st.name;
    trainer<Model, typename Stage::freeze, data::any_mixture_sampler, optim::adamw<float>, any_schedule, progress, metrics_jsonl, nan_guard> t(
        m, optim::adamw<float>(ao), any_schedule{st.schedule, warmup_steps(st.steps, st.warmup_ratio), st.steps}, g, to, bar,
        metrics_jsonl(dir / "metrics.jsonl"), nan_guard{});
    if (t.resume_if_possible(sampler)) std::printf("stage %zu %s: resuming from step %lld\n", index + 1, st.name.c_str(), t.step());
    const auto t0 = std::chrono::steady_clock::now();
    const fit_result res = t.fit(sampler);
    if (!res.stopped.empty()) return "stage " + std::to_string(index + 1) + " " + st.name + ": " + res.stopped;
    if constexpr (keeps_only_vision_tower<Stage>::value) {
        // final/ is the input model with the trained tower (idempotent: a rerun after an
        // interruption here resumes the finished trainer and writes the same folder again)
        Model out = Model::load(L);
        using tensor_t = typename Model::tensor_t;
        std::map<std::string, tensor_t> trained;
        m.vision.for_each_parameter([&](const std::string& n, auto& p) { trained.emplace(n, tensor_t::from_host(p.value.shape(), p.value.to_host())); });
        out.vision.for_each_parameter([&](const std::string& n, auto& p) { p.value = trained.at(n); });
        io::write_folder(dir / "final", [&](const fs::path& tmp) {
            out.save_into(tmp);
            copy_tokenizer_files(L.tokenizer_dir(), tmp / "llm");
            if (fs::exists(L.preprocessor_file())) fs::copy_file(L.preprocessor_file(), tmp / "vision_tower" / "preprocessor_config.json");
        });
    }
    nlohmann::json done;
    done["stage"] = st.name;
    done["steps"] = res.step;
    done["final_loss"] = res.last_loss;
    done["seconds_this_process"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done["loader_wait_seconds"] = sampler.wait_seconds();
    done["bad_records"] = sampler.bad_records_seen().total();
    io::write_json(dir / "done.json", done);
    model_out = dir / "final";
    return {};
}

template <class Model, class... Stages, std::size_t... I>
run_result run_all(std::tuple<Stages...>*, std::index_sequence<I...>, const std::filesystem::path& init,
                   const std::vector<stage_settings>& settings, const run_options& o) {
    run_result r;
    std::filesystem::path current = init;
    const auto t0 = std::chrono::steady_clock::now();
    auto one = [&](auto* stage_tag, std::size_t i) {
        using Stage = std::remove_pointer_t<decltype(stage_tag)>;
        if (!r.stopped.empty()) return;
        std::filesystem::path next;
        r.stopped = run_stage<Model, Stage>(current, settings[i], i, o, next);
        if (!r.stopped.empty()) return;
        current = next;
        r.model = next;
        ++r.stages_done;
        if (o.after_stage) o.after_stage(settings[i], i, next);
    };
    (one(static_cast<Stages*>(nullptr), I), ...);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace detail

/// Runs the recipe's stages from the VLM folder `init`. `settings` must name the stages in the
/// recipe's order. Writes RUN/recipe.json first; a RUN that already has one must have been
/// started with the same settings (resume), else this throws rather than mix two runs.
template <class Model, class Recipe>
run_result run(const std::filesystem::path& init, const std::vector<stage_settings>& settings, const run_options& o) {
    namespace fs = std::filesystem;
    constexpr std::size_t n = Recipe::size;
    if (settings.size() != n) throw config_error("recipe: " + std::to_string(settings.size()) + " stage settings for " + std::to_string(n) + " stages");
    const auto names = stage_names<Recipe>();
    for (std::size_t i = 0; i < n; ++i)
        if (settings[i].name != names[i])
            throw config_error("recipe: stage " + std::to_string(i + 1) + " is '" + names[i] + "' but its settings are for '" + settings[i].name + "'");
    if (o.run_dir.empty()) throw config_error("recipe: no run folder");
    fs::create_directories(o.run_dir);
    const fs::path file = o.run_dir / "recipe.json";
    nlohmann::json j;
    j["format"] = "vila.recipe";
    j["init"] = fs::absolute(init).string();
    j["registry"] = o.registry.empty() ? std::string() : fs::absolute(o.registry).string();
    j["seed"] = o.seed;
    j["stages"] = to_json(settings);
    if (fs::exists(file)) {
        const auto old = io::read_json(file);
        const io::config_fields recorded(old, file.string());  // (an object, or a config_error naming the file)
        auto at = [&](const char* k) { return recorded.has(k) ? old.at(k) : nlohmann::json(); };
        if (at("stages") != j["stages"] || at("seed") != j["seed"])
            throw config_error(file.string() + ": this run folder holds a recipe with other settings; resume it with the same settings or choose a new folder");
    } else {
        io::write_json(file, j);
    }
    return detail::run_all<Model>(static_cast<typename Recipe::list*>(nullptr), std::make_index_sequence<n>{}, init, settings, o);
}

}  // namespace vila::train::recipe

namespace vila {
namespace recipe = train::recipe;
}
