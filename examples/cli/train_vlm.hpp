// vila train on a VLM folder (VILA layout or LLaVA-HF): fine-tune on your own data.
// Included by train_command.hpp (inside vila.cpp's anonymous namespace).
//
//   vila train --init VLM_DIR --data my.json [--image-folder DIR] --out RUN_DIR
//              [--freeze sft|sft_with_vision|pretrain|align_projector|all] [--conv vicuna_v1]
//              [--mixture natural|weighted|sequential] [--data-registry FILE] [--bad-records lenient|strict]
//              [--lora r=8,alpha=16,targets=q_proj+v_proj]   (adapters on the LLM; the projector
//              still trains when --freeze says so, as LLaVA's LoRA recipe does)
// --data is one file or a mixture "a+b+c" of registry names or paths (data/open.hpp detects
// each path's format). Samples are rendered with the chat template (--conv) and cut at
// --seq-len spliced tokens (default: the LLM's max_position_embeddings), never inside an image.

/// The freezing preset named by --freeze, as a compile-time rule reading one run-time setting
/// (one trainer type serves every preset).
struct cli_freeze {
    static inline std::string preset = "sft";
    static inline bool lora = false;  // LoRA adapters on the LLM: the LLM's base weights stay frozen
    static bool trains(const vila::train::parameter_part& p, std::string_view name) {
        namespace f = vila::train::freeze;
        if (lora && (p.adapter || p.module == vila::train::part::llm)) return p.adapter;
        if (preset == "sft") return f::sft::trains(p, name);
        if (preset == "sft_with_vision" || preset == "all") return f::sft_with_vision::trains(p, name);
        if (preset == "pretrain") return f::pretrain::trains(p, name);
        if (preset == "align_projector") return f::align_projector::trains(p, name);
        throw usage_error("--freeze '" + preset + "' is not sft, sft_with_vision, pretrain, align_projector or all");
    }
};

template <class Model>
int run_vlm_training(const train_settings& s, const std::filesystem::path& run, const vila::model::layout& L, bool resume) {
    namespace fs = std::filesystem;
    using namespace vila;
    Model model = Model::load(L);
    const auto tok = tokenizer::load(L.tokenizer_dir());
    const auto processor = model::load_image_processor(L);
    const index_t max_length = s.j.contains("seq-len") ? index_t(s.number("seq-len")) : model.llm.config.max_position_embeddings;
    if (max_length > model.llm.config.max_position_embeddings)
        throw usage_error("--seq-len " + std::to_string(max_length) + " exceeds the model's max_position_embeddings " +
                          std::to_string(model.llm.config.max_position_embeddings));
    cli_freeze::preset = s.text("freeze", "sft");
    const std::string lora_spec = s.text("lora");
    cli_freeze::lora = !lora_spec.empty();
    if (!lora_spec.empty()) {
        const auto cfg = lora::peft_config::parse(lora_spec);
        const index_t n = lora::attach(model, cfg, std::uint64_t(s.number("seed")));
        std::printf("lora: r=%lld alpha=%g on %lld linear layers of the LLM; its base weights frozen\n", (long long)cfg.r, cfg.alpha, (long long)n);
    }

    std::vector<data::mixture_entry> sources;
    for (auto spec : data::parse_mixture(s.text("data"), s.text("data-registry"))) {
        if (spec.image_folder.empty() && !s.text("image-folder").empty()) spec.image_folder = s.text("image-folder");
        auto src = data::open_source(spec);
        std::printf("data: %s: %s, %zu records\n", spec.name.c_str(), src->describe().c_str(), src->size());
        sources.push_back({spec.name, std::move(src), spec.weight});
    }
    data::render_options r;
    r.conv_template = s.text("conv", "vicuna_v1");
    r.image_token = model.image_token_id;
    r.tokens_per_image = model.tokens_per_image();
    r.max_length = max_length;
    data::mixture_options mo;
    mo.batch_size = index_t(s.number("batch-size"));
    mo.seed = std::uint64_t(s.number("seed"));
    mo.on_bad = s.text("bad-records", "lenient") == "strict" ? data::bad_records::strict : data::bad_records::lenient;
    mo.workers = int(s.number("workers"));
    mo.prefetch = 2 * mo.batch_size * index_t(s.number("grad-accum"));
    data::any_mixture_sampler sampler(s.text("mixture", "natural"), std::move(sources), tok, r, &processor, mo);
    // everything is checked: now the run folder (config.json first, so a killed run can resume)
    fs::create_directories(run);
    if (!resume) io::write_json(run / "config.json", run_config_of(s));
    std::printf("vila %s: %s %s (%s, %s) on %d threads into %s\n", vila::version(), resume ? "resuming" : "fine-tuning", L.dir.c_str(),
                L.vision.model_type.c_str(), L.projector_type.c_str(), num_threads(), run.c_str());

    train::trainer_options o = trainer_options_of(s, run);
    o.tokenizer_dir = L.tokenizer_dir();
    o.preprocessor_file = L.preprocessor_file();
    train::param_groups g;
    g.lr = s.number("lr");
    g.weight_decay = s.number("weight-decay");
    optim::adamw_options ao;
    ao.lr = s.number("lr");
    ao.beta1 = s.number("beta1");
    ao.beta2 = s.number("beta2");
    ao.eps = s.number("eps");
    ao.weight_decay = s.number("weight-decay");
    train::trainer<Model, train::freeze::predicate<cli_freeze>, data::any_mixture_sampler, optim::adamw<float>, train::any_schedule,
                   train::progress, train::metrics_jsonl, train::nan_guard>
        t(model, optim::adamw<float>(ao), schedule_of(s, o.steps), g, o, progress_of(s, o.steps), train::metrics_jsonl(run / "metrics.jsonl"),
          train::nan_guard{});
    if (resume) {
        if (!t.resume_if_possible(sampler)) std::printf("resume: %s has no checkpoint yet; starting from the initial weights\n", run.c_str());
        else std::printf("resume: continuing from step %lld\n", t.step());
    }
    const auto res = t.fit(sampler);
    const auto& bad = sampler.bad_records_seen();
    if (bad.total() > 0) {
        std::printf("data: %zu bad records skipped:", bad.total());
        for (const auto& [why, n] : bad.counts) std::printf(" %s %zu;", why.c_str(), n);
        std::printf("\n");
        for (const auto& m : bad.first) std::printf("  %s\n", m.c_str());
    }
    std::printf("data: waited %.2f s for the loader (%d worker%s)\n", sampler.wait_seconds(), mo.workers, mo.workers == 1 ? "" : "s");
    if (sampler.truncated() > 0) std::printf("data: %zu samples cut at %lld tokens\n", sampler.truncated(), (long long)max_length);
    if (!res.stopped.empty()) {
        std::fprintf(stderr, "vila: training stopped at step %lld: %s%s%s\n", res.step, res.stopped.c_str(),
                     res.checkpoint.empty() ? "" : "; last checkpoint ", res.checkpoint.string().c_str());
        return 3;
    }
    std::printf("trained %lld steps: final loss %.4f; model in %s\n", res.step, res.last_loss, (run / "final").c_str());
    return 0;
}

/// Dispatches on the folder's vision tower and projector (one trainer type per pair).
int train_vlm(const train_settings& s, const std::filesystem::path& run, const vila::model::layout& L, bool resume) {
    using namespace vila;
    if (s.text("optimizer", "adamw") != "adamw") throw usage_error("VLM training uses --optimizer adamw");
    return model::visit_vlm_type(L, [&](auto tag) { return run_vlm_training<typename decltype(tag)::type>(s, run, L, resume); });
}
