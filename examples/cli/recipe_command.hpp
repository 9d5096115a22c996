// vila train --recipe: VILA's stages one after another (vila/train/recipe.hpp), and `vila train`
// with no arguments: the demo (a synthetic world, a VLM trained from nothing through all stages,
// answers to new pictures, the evaluation table). Included by vila.cpp inside its anonymous
// namespace, after eval_command.hpp.
//
//   vila train --recipe vila3-from-scratch --world DIR --out RUN [--size world|ci] [--seed S]
//   vila train --recipe vila3 --init VLM_DIR (--world DIR | --data-registry FILE) --out RUN [--size paper|world|ci]
//              [--recipe-config FILE.json] [--workers N] [--threads N] [--plain] [--eval-limit N] [--no-eval]
// Running the same command again continues an interrupted recipe (RUN/recipe.json).

const char* const recipe_usage_text =
    "usage: vila train --recipe vila3|vila3-from-scratch|vila3-frozen-llm-from-scratch --out RUN\n"
    "                  (--world DIR | --data-registry FILE) [--init VLM_DIR] [--size paper|world|ci]\n"
    "                  [--recipe-config FILE.json] [--seed S] [--workers N] [--threads N] [--plain]\n"
    "                  [--eval-limit N] [--no-eval] [--overwrite]\n"
    "       vila train            (no arguments: the demo, into ./vila-demo)\n"
    "  Runs VILA's stages, each from the previous one's model: align (projector on pairs), pretrain\n"
    "  (projector + LLM on interleaved documents + pairs), sft (visual + text-only instructions).\n"
    "  -from-scratch recipes first build a model with random weights and a tokenizer trained on the\n"
    "  world (--world; written there with --seed when the folder does not exist), then train its LLM on\n"
    "  text (stage 'text') and its vision tower by captioning (stage 'vision'). A recipe JSON overrides\n"
    "  any stage's settings: {\"stages\": {\"pretrain\": {\"steps\": 300, \"lr\": 1e-4}}}. After each stage\n"
    "  the world's held-out sets are evaluated (with --world) and a table is printed; RUN/results.json\n"
    "  keeps it. Run the same command again to continue an interrupted recipe.\n";

void print_results_table(const nlohmann::json& rows) {
    std::printf("\n%-10s %7s %7s %7s %9s %10s %9s %8s\n", "stage", "VQA", "CIDEr", "BLEU-4", "4-shot", "text ICL", "(choice)", "text MC");
    for (const auto& r : rows)
        std::printf("%-10s %6.1f%% %7.3f %7.3f %8.1f%% %9.1f%% %8.1f%% %7.1f%%\n", r["stage"].get<std::string>().c_str(), 100 * r["vqa"].get<double>(),
                    r["cider"].get<double>(), r["bleu4"].get<double>(), 100 * r["icl4"].get<double>(), 100 * r["text_icl_strict"].get<double>(),
                    100 * r["text_icl"].get<double>(), 100 * r["text_mc"].get<double>());
    std::printf("VQA: 0-shot on new pictures; 4-shot: visual in-context naming (chance 25%%); text ICL: strict (greedy over the\n"
                "whole vocabulary) and by choice; text MC: facts the instructions never asked (chance 25%%)\n\n");
}

/// A few held-out questions answered by the final model.
void show_answers(const std::filesystem::path& model_dir, const std::filesystem::path& world, std::size_t n) {
    using namespace vila;
    const auto L = model::read_layout(model_dir);
    const auto tok = tokenizer::load(L.tokenizer_dir());
    const auto proc = model::load_image_processor(L);
    model::visit_vlm_type(L, [&](auto tag) {
        auto m = decltype(tag)::type::load(L);
        auto items = eval::read_vqa(world / "eval" / "vqa.json");
        if (items.size() > n) items.resize(n);
        const auto answers = eval::answer_all(m, tok, items, m.image_token_id, "vicuna_v1", &proc, 8, nullptr);
        for (std::size_t i = 0; i < items.size(); ++i) {
            std::string q = items[i].question;
            if (q.rfind("<image>\n", 0) == 0) q = q.substr(8);
            std::printf("  %-22s %-40s -> %-12s (truth: %s)\n", items[i].images.at(0).file.filename().c_str(), q.c_str(), answers[i].c_str(),
                        items[i].answers.at(0).c_str());
        }
        return 0;
    });
}

int run_recipe(const std::string& recipe, const std::string& size, const std::filesystem::path& world_arg, const std::filesystem::path& registry_arg,
               const std::filesystem::path& init_arg, const std::filesystem::path& run, const std::string& recipe_config, std::uint64_t seed,
               int workers, bool plain, std::size_t eval_limit, bool eval, bool overwrite) {
    namespace fs = std::filesystem;
    using namespace vila;
    const bool scratch = recipe != "vila3";
    auto stages = train::recipe::preset(recipe, size);  // checks the names first
    if (!recipe_config.empty()) train::recipe::apply_overrides(stages, io::read_json(recipe_config), recipe_config);
    if (scratch && !init_arg.empty()) throw usage_error("--recipe " + recipe + " builds its own model: drop --init (or use --recipe vila3)");
    if (!scratch && init_arg.empty()) throw usage_error("--recipe vila3 starts from a VLM folder: give --init VLM_DIR");
    if (scratch && world_arg.empty()) throw usage_error("--recipe " + recipe + " trains on the synthetic world: give --world DIR");
    if (world_arg.empty() == registry_arg.empty()) throw usage_error("the recipe needs exactly one of --world DIR and --data-registry FILE");
    if (overwrite) io::remove_folder(run);  // renamed aside first: a crash never leaves half an old run
    if (fs::exists(run) && !fs::exists(run / "recipe.json"))
        throw usage_error(run.string() + " exists and holds no recipe: choose a new folder or pass --overwrite");
    if (fs::exists(run / "recipe.json")) std::printf("continuing the recipe in %s\n", run.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    if (!world_arg.empty() && !fs::exists(world_arg)) {
        std::printf("writing the synthetic world (seed %llu) into %s ...\n", (unsigned long long)seed, world_arg.c_str());
        std::fflush(stdout);
        const auto sum = data::synthetic::write_world(world_arg, vila::data::synthetic::recipe_world(size, seed));
        std::printf("  %zu files, %zu pictures, %.1f MB\n", sum.files, sum.images, double(sum.bytes) / 1e6);
    }
    const fs::path registry = world_arg.empty() ? registry_arg : world_arg / "registry.json";
    fs::create_directories(run);
    fs::path init = init_arg;
    if (scratch) {
        init = run / "00-init";
        if (!fs::exists(init)) {
            train::world_model_options wo;
            wo.seed = seed;
            const std::size_t vocab = train::make_world_model(world_arg, init, wo);
            std::printf("initial model: %s (random weights; BPE tokenizer of %zu tokens trained on the world's text)\n", init.c_str(), vocab);
        }
    }
    nlohmann::json table = nlohmann::json::array();
    if (fs::exists(run / "results.json")) {
        const auto old = io::read_json(run / "results.json");
        if (old.is_object() && old.contains("stages")) table = old["stages"];
    }
    train::recipe::run_options o;
    o.run_dir = run;
    o.registry = registry;
    o.seed = seed;
    o.workers = workers;
    o.plain_progress = plain;
    if (eval && !world_arg.empty())
        o.after_stage = [&](const train::recipe::stage_settings& st, std::size_t i, const fs::path& model_dir) {
            for (const auto& r : table)
                if (r.value("index", -1) == int(i)) return;  // evaluated before the interruption
            const auto e0 = std::chrono::steady_clock::now();
            vila::eval::world_eval_options eo;
            eo.limit = eval_limit;
            nlohmann::json r = vila::eval::on_world(model_dir, world_arg, eo);
            r["stage"] = st.name;
            r["index"] = i;
            r["eval_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
            table.push_back(r);
            nlohmann::json all;
            all["recipe"] = recipe;
            all["size"] = size;
            all["seed"] = seed;
            all["stages"] = table;
            io::write_json(run / "results.json", all);
            print_results_table(table);
        };
    train::recipe::run_result res;
    const auto L = model::read_layout(init);
    auto go = [&](auto tag) {
        using M = typename decltype(tag)::type;
        if (recipe == "vila3") return train::recipe::run<M, train::recipe::vila3>(init, stages, o);
        if (recipe == "vila3-from-scratch") return train::recipe::run<M, train::recipe::vila3_from_scratch>(init, stages, o);
        return train::recipe::run<M, train::recipe::vila3_frozen_llm_from_scratch>(init, stages, o);
    };
    if (scratch) res = go(model::type_tag<train::world_vlm>{});
    else res = model::visit_vlm_type(L, go);
    if (!res.stopped.empty()) {
        std::fprintf(stderr, "vila: the recipe stopped: %s; run the same command again to continue\n", res.stopped.c_str());
        return 3;
    }
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 60.0;
    std::printf("recipe %s complete: %zu stages in %.1f min; the model is %s\n", recipe.c_str(), res.stages_done, minutes, res.model.c_str());
    if (!world_arg.empty() && eval) {
        std::printf("\nnew pictures, questions the model never saw:\n");
        show_answers(res.model, world_arg, 8);
    }
    return 0;
}

/// `vila train --recipe ...` (flags in `a`), or the demo when `demo`.
int cmd_recipe(args& a, bool demo) {
    namespace fs = std::filesystem;
    if (demo) {
        std::printf("vila %s demo: VILA's recipe on a synthetic world, from random weights, on %d threads.\n"
                    "(`vila train --help` for your own data; this writes ./vila-demo; run it again to continue)\n",
                    vila::version(), vila::num_threads());
        return run_recipe("vila3-from-scratch", "world", "vila-demo/world", "", "", "vila-demo/run", "", 0, 1, false, 0, true, false);
    }
    const std::string recipe = a.take("--recipe"), size = a.take("--size"), world = a.take("--world"), registry = a.take("--data-registry"),
                      init = a.take("--init"), out = a.take("--out"), config = a.take("--recipe-config"), seed_s = a.take("--seed"),
                      workers_s = a.take("--workers"), threads_s = a.take("--threads"), limit_s = a.take("--eval-limit");
    const bool plain = a.flag("--plain"), no_eval = a.flag("--no-eval"), overwrite = a.flag("--overwrite");
    a.done();
    if (out.empty()) throw usage_error("--recipe needs --out RUN_DIR");
    auto whole = [](const std::string& flag, const std::string& v, double lo, double hi, double def) {
        if (v.empty()) return def;
        double x = 0;
        if (!parse_number(v, x) || x < lo || x > hi || x != std::floor(x))
            throw usage_error(flag + " expects an integer from " + train_settings::fmt(lo) + " to " + train_settings::fmt(hi) + ", got '" + v + "'");
        return x;
    };
    const auto seed = std::uint64_t(whole("--seed", seed_s, 0, 9007199254740992.0, 0));
    const int workers = int(whole("--workers", workers_s, 0, 64, 1));
    if (!threads_s.empty()) vila::set_num_threads(int(whole("--threads", threads_s, 1, 1024, 1)));
    const auto limit = std::size_t(whole("--eval-limit", limit_s, 0, 1e9, 0));
    const std::string sz = size.empty() ? (recipe == "vila3" && world.empty() ? "paper" : "world") : size;
    return run_recipe(recipe, sz, world, registry, init, out, config, seed, workers, plain, limit, !no_eval, overwrite);
}
