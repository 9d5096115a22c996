// vila train — train or fine-tune a text LLM from the command line (docs/cli.md, docs/training.md).
// Included by vila.cpp inside its anonymous namespace (it uses args and usage_error).
//
//   vila train --init MODEL_DIR --data FILE.jsonl --out RUN_DIR [--steps N ...]
//   vila train --init-config CONFIG.json --tokenizer DIR --data FILE.jsonl --out RUN_DIR ...
//   vila train --config run.json [flags override its keys]
//   vila train --resume RUN_DIR [--steps N] [--threads N]
// A config file's keys are the flag names without "--" ({"init": "...", "batch-size": 8}).

const char* const train_usage_text =
    "usage: vila train (--init MODEL_DIR | --init-config CONFIG.json --tokenizer DIR) --data FILE.jsonl --out RUN_DIR\n"
    "                  [--steps N] [--batch-size B] [--seq-len T] [--grad-accum K] [--lr X] [--schedule S]\n"
    "                  [--warmup-steps W | --warmup-ratio R] [--weight-decay D] [--max-grad-norm G]\n"
    "                  [--optimizer adamw|sgd] [--beta1 B1] [--beta2 B2] [--eps E] [--momentum M]\n"
    "                  [--save-every K] [--keep-last K] [--seed S] [--threads N] [--overwrite] [--plain]\n"
    "                  [--lora r=8,alpha=16,targets=q_proj+v_proj]\n"
    "                  VLM folders: [--image-folder DIR] [--freeze P] [--conv T] [--mixture M] [--data-registry F]\n"
    "                  [--bad-records lenient|strict] [--workers N]\n"
    "       vila train --config run.json [flags]        (keys are the flag names without --)\n"
    "       vila train --resume RUN_DIR [--steps N] [--threads N]\n"
    "  Trains a text LLM (HF LLaMA-family folder) on JSONL rows {\"text\": ...}: rows are tokenized, joined\n"
    "  with EOS and cut into --seq-len chunks. --batch-size is the micro-batch; --grad-accum K micro-batches\n"
    "  make one step. Defaults follow HF's Trainer with VILA's schedule: AdamW (0.9, 0.999, 1e-8), weight\n"
    "  decay 0, clipping at 1.0, cosine to 0 after warmup, lr 2e-5.\n"
    "  RUN_DIR gets config.json, metrics.jsonl, checkpoints/step-N/ (every --save-every steps, at the end,\n"
    "  and on Ctrl-C), checkpoints/latest and final/ (the trained model with its tokenizer).\n"
    "  --lora trains PEFT-style LoRA adapters only (targets: module names joined by +, or all-linear; also\n"
    "  rslora); checkpoints and final/ then hold adapter_config.json + adapter_model.safetensors too.\n"
    "  VLM folders (--init DIR with llm/, vision_tower/, mm_projector/, or a LLaVA-HF folder): --data is a file\n"
    "  or a mixture a+b+c of files and registry names (--data-registry FILE); formats are detected: LLaVA\n"
    "  conversation JSON/JSONL (images under --image-folder, default beside the file or in images/), MMC4\n"
    "  JSONL, webdataset .tar shards of image-text pairs, FLAN-style {question, answer}, {text}. Options:\n"
    "  --freeze sft (projector + LLM; default) | sft_with_vision | pretrain | align_projector | all,\n"
    "  --conv vicuna_v1 | llama_3 | hermes-2 | plain | auto, --mixture natural | weighted | sequential, --bad-records\n"
    "  lenient (skip and count; default) | strict. --seq-len caps a sample's length after splicing images.\n"
    "  --workers N loader threads read, tokenize and decode images ahead of the trainer (default 1).\n"
    "  With no arguments `vila train` runs the demo: VILA's recipe on a synthetic world (below).\n";

/// The run's settings: flag name (without --) -> JSON value. Numbers are checked against one
/// table (default, range, integral) before anything is created on disk.
struct train_settings {
    nlohmann::json j = nlohmann::json::object();

    struct number_spec {
        const char* key;
        double def, lo, hi;
        bool integral;
    };
    static const std::vector<number_spec>& numbers() {
        static const std::vector<number_spec> k = {
            {"steps", 100, 0, 1e12, true},       {"batch-size", 8, 1, 1 << 20, true},   {"seq-len", 256, 2, 1 << 24, true},
            {"grad-accum", 1, 1, 1 << 20, true}, {"lr", 2e-5, 0, 1e6, false},           {"warmup-steps", 0, 0, 1e12, true},
            {"warmup-ratio", 0, 0, 1, false},    {"weight-decay", 0, 0, 1e6, false},    {"max-grad-norm", 1.0, 0, 1e12, false},
            {"beta1", 0.9, 0, 1, false},         {"beta2", 0.999, 0, 1, false},         {"eps", 1e-8, 0, 1, false},
            {"momentum", 0.9, 0, 1, false},      {"save-every", 0, 0, 1e12, true},      {"keep-last", 3, 0, 1 << 20, true},
            {"seed", 0, 0, 9007199254740992.0, true}, {"threads", 0, 1, 1024, true}, {"workers", 1, 0, 64, true}};
        return k;
    }
    static const std::vector<std::string>& textual() {
        static const std::vector<std::string> k = {"init",   "init-config", "tokenizer", "data",          "out",        "schedule", "optimizer",
                                                   "lora",   "image-folder", "conv",     "freeze",        "mixture",    "data-registry",
                                                   "bad-records"};
        return k;
    }
    static const number_spec* spec(const std::string& key) {
        for (const auto& n : numbers())
            if (key == n.key) return &n;
        return nullptr;
    }
    static bool known(const std::string& key) {
        return spec(key) || std::count(textual().begin(), textual().end(), key) || key == "overwrite" || key == "plain";
    }
    /// The value of a numeric setting (its default when absent); one line naming the flag if bad.
    double number(const std::string& key) const {
        const number_spec* n = spec(key);
        if (!n) throw std::logic_error("train_settings: no number " + key);
        if (!j.contains(key)) return n->def;
        const auto& v = j[key];
        if (!v.is_number()) throw usage_error("--" + key + " expects a number, got " + v.dump());
        const double x = v.get<double>();
        if (!std::isfinite(x) || x < n->lo || x > n->hi || (n->integral && x != std::floor(x)))
            throw usage_error("--" + key + " " + fmt(x) + " is outside [" + fmt(n->lo) + ", " + fmt(n->hi) + "]" +
                              (n->integral ? " or not an integer" : ""));
        return x;
    }
    /// Checks every setting present (types, ranges, the schedule's and optimizer's names).
    void validate() const {
        for (const auto& [k, v] : j.items()) {
            if (spec(k)) number(k);
            else if (std::count(textual().begin(), textual().end(), k)) text(k);
        }
        const std::string o = text("optimizer", "adamw");
        if (o != "adamw" && o != "sgd") throw usage_error("--optimizer '" + o + "' is not adamw or sgd");
        vila::train::any_schedule{text("schedule", "cosine"), 0, 1}.factor(0);
        auto one_of = [&](const char* key, const char* def, std::initializer_list<const char*> ok) {
            const std::string v = text(key, def);
            std::string list;
            for (const char* o : ok) {
                if (v == o) return;
                list += std::string(list.empty() ? "" : ", ") + o;
            }
            throw usage_error("--" + std::string(key) + " '" + v + "' is not one of " + list);
        };
        one_of("freeze", "sft", {"sft", "sft_with_vision", "pretrain", "align_projector", "all"});
        one_of("mixture", "natural", {"natural", "weighted", "sequential"});
        one_of("bad-records", "lenient", {"lenient", "strict"});
        one_of("conv", "vicuna_v1", {"vicuna_v1", "v1", "llama_3", "hermes-2", "plain", "auto"});
        if (!text("lora").empty()) vila::lora::peft_config::parse(text("lora"));
    }
    std::string text(const std::string& key, const std::string& def = "") const {
        if (!j.contains(key)) return def;
        if (!j[key].is_string()) throw usage_error("--" + key + " expects a string, got " + j[key].dump());
        return j[key].get<std::string>();
    }
    static std::string fmt(double x) {
        char b[32];
        std::snprintf(b, sizeof b, "%g", x);
        return b;
    }
};

/// Reads flags into settings (after a --config file's keys): numbers parsed strictly.
void read_train_flags(args& a, train_settings& s) {
    for (const auto& n : train_settings::numbers()) {
        const std::string k = n.key;
        const std::string v = a.take("--" + k);
        if (v.empty()) continue;
        double x = 0;
        if (!parse_number(v, x)) throw usage_error("--" + k + " expects a number, got '" + v + "'");
        s.j[k] = x;
    }
    for (const auto& k : train_settings::textual()) {
        const std::string v = a.take("--" + k);
        if (!v.empty()) s.j[k] = v;
    }
    if (a.flag("--overwrite")) s.j["overwrite"] = true;
    if (a.flag("--plain")) s.j["plain"] = true;
}

/// EOS of a tokenizer/model pair: tokenizer_config's eos, the model's eos_token_id, or a known token.
std::int32_t eos_of(const vila::tokenizer::tokenizer& tok, const vila::llm::llama_config& c) {
    if (tok.eos_id()) return *tok.eos_id();
    if (!c.eos_token_ids.empty()) return std::int32_t(c.eos_token_ids.front());
    for (const char* t : {"<|endoftext|>", "</s>", "<|im_end|>", "<|end_of_text|>"})
        if (auto id = tok.token_to_id(t)) return *id;
    throw vila::config_error("no end-of-sequence token: set eos_token_id in the model's config.json or tokenizer_config.json");
}

/// What RUN_DIR/config.json records: the settings, the run-folder format and the library version.
nlohmann::json run_config_of(const train_settings& s) {
    nlohmann::json j = s.j;
    j["format_version"] = vila::train::run_format_version;
    j["vila_version"] = vila::version();
    return j;
}

/// The trainer options every run shares (steps, accumulation, clipping, checkpoints).
vila::train::trainer_options trainer_options_of(const train_settings& s, const std::filesystem::path& run) {
    vila::train::trainer_options o;
    o.steps = (long long)s.number("steps");
    o.grad_accum = int(s.number("grad-accum"));
    o.max_grad_norm = s.number("max-grad-norm");
    o.run_dir = run;
    o.save_every = (long long)s.number("save-every");
    o.keep_last = int(s.number("keep-last"));
    o.run_config = run_config_of(s);
    return o;
}
vila::train::any_schedule schedule_of(const train_settings& s, long long steps) {
    vila::train::any_schedule sched;
    sched.kind = s.text("schedule", "cosine");
    sched.total = steps;
    sched.warmup = s.j.contains("warmup-steps") ? (long long)s.number("warmup-steps") : vila::train::warmup_steps(steps, s.number("warmup-ratio"));
    return sched;
}
vila::train::progress progress_of(const train_settings& s, long long steps) {
    vila::train::progress bar;
    bar.force_plain = s.j.value("plain", false);
    bar.every = std::max(1LL, steps / 20);
    return bar;
}

template <class Freeze, class Optimizer>
int run_training(const train_settings& s, const std::filesystem::path& run, vila::llm::llama<float>& model,
                 const vila::tokenizer::tokenizer& tok, const std::filesystem::path& tokenizer_dir, bool resume, Optimizer opt) {
    namespace fs = std::filesystem;
    using namespace vila;
    const auto batch = index_t(s.number("batch-size"));
    const auto seq_len = index_t(s.number("seq-len"));
    const auto seed = std::uint64_t(s.number("seed"));
    const std::string data_file = s.text("data");
    data::text_chunks_info info;
    auto chunks = data::text_jsonl_chunks(data_file, tok, seq_len, eos_of(tok, model.config), &info);
    std::printf("data: %s: %zu rows, %zu tokens, %zu chunks of %lld (%zu tokens left over)\n", data_file.c_str(), info.rows, info.tokens,
                chunks.size(), (long long)seq_len, info.dropped_tokens);
    data::sequence_sampler sampler(std::move(chunks), batch, seed, true, fs::path(data_file).filename().string());

    train::trainer_options o = trainer_options_of(s, run);
    o.tokenizer_dir = tokenizer_dir;
    train::param_groups g;
    g.lr = s.number("lr");
    g.weight_decay = s.number("weight-decay");
    train::trainer<llm::llama<float>, Freeze, data::sequence_sampler, Optimizer, train::any_schedule, train::progress,
                   train::metrics_jsonl, train::nan_guard>
        t(model, std::move(opt), schedule_of(s, o.steps), g, o, progress_of(s, o.steps), train::metrics_jsonl(run / "metrics.jsonl"),
          train::nan_guard{});
    if (resume) {
        if (!t.resume_if_possible(sampler)) std::printf("resume: %s has no checkpoint yet; starting from the initial weights\n", run.c_str());
        else std::printf("resume: continuing from step %lld\n", t.step());
    }
    const auto r = t.fit(sampler);
    if (!r.stopped.empty()) {
        std::fprintf(stderr, "vila: training stopped at step %lld: %s%s%s\n", r.step, r.stopped.c_str(),
                     r.checkpoint.empty() ? "" : "; last checkpoint ", r.checkpoint.string().c_str());
        return 3;
    }
    std::printf("trained %lld steps: final loss %.4f; model in %s\n", r.step, r.last_loss, (run / "final").c_str());
    return 0;
}

#include "train_vlm.hpp"

int cmd_recipe(args& a, bool demo);  // recipe_command.hpp
extern const char* const recipe_usage_text;

int cmd_train(args a) {
    namespace fs = std::filesystem;
    using namespace vila;
    if (a.flag("--help") || a.flag("-h")) {
        std::fputs(train_usage_text, stdout);
        std::fputs(recipe_usage_text, stdout);
        return 0;
    }
    if (a.v.empty()) return cmd_recipe(a, true);  // the demo
    if (std::count(a.v.begin(), a.v.end(), std::string("--recipe"))) return cmd_recipe(a, false);
    train_settings s;
    const std::string resume_dir = a.take("--resume");
    const std::string config_file = a.take("--config");
    if (!resume_dir.empty()) {
        if (!config_file.empty()) throw usage_error("--resume takes the run's own config.json; drop --config");
        s.j = io::read_json(fs::path(resume_dir) / "config.json");
        if (!s.j.is_object()) throw config_error(resume_dir + "/config.json: not a JSON object");
        const int fv = s.j.value("format_version", -1);
        if (fv != train::run_format_version)
            throw config_error(resume_dir + ": run format " + std::to_string(fv) + " (vila " + s.j.value("vila_version", std::string("?")) +
                               "); this vila " + vila::version() + " resumes format " + std::to_string(train::run_format_version));
        s.j.erase("format_version");
        s.j.erase("vila_version");
        train_settings extra;
        read_train_flags(a, extra);
        a.done();
        for (const auto& [k, v] : extra.j.items()) {
            if (k != "steps" && k != "threads") throw usage_error("--resume accepts only --steps and --threads besides, not --" + k);
            s.j[k] = v;
        }
        s.j["out"] = resume_dir;
    } else {
        if (!config_file.empty()) {
            s.j = io::read_json(config_file);
            if (!s.j.is_object()) throw config_error(config_file + ": not a JSON object");
            for (const auto& [k, v] : s.j.items())
                if (!train_settings::known(k)) throw config_error(config_file + ": unknown key '" + k + "'");
        }
        read_train_flags(a, s);
        a.done();
    }
    s.validate();  // every setting, before anything is written
    if (s.j.contains("threads")) set_num_threads(int(s.number("threads")));
    const fs::path run = s.text("out");
    if (run.empty()) throw usage_error("train needs --out RUN_DIR");
    if (s.text("data").empty()) throw usage_error("train needs --data FILE.jsonl (rows {\"text\": ...})");
    const std::string init = s.text("init"), init_config = s.text("init-config");
    if (init.empty() == init_config.empty()) throw usage_error("train needs exactly one of --init MODEL_DIR and --init-config CONFIG.json");
    const bool resume = !resume_dir.empty();
    if (!resume && fs::exists(run)) {
        if (!s.j.value("overwrite", false))
            throw usage_error(run.string() + " exists: resume it with --resume " + run.string() + ", or pass --overwrite to start over");
        vila::io::remove_folder(run);  // renamed aside first: a crash never leaves half an old run to resume
    }
    s.j.erase("overwrite");
    // a VLM folder (VILA layout or LLaVA-HF): fine-tuning on conversation / interleaved / pair data
    const bool is_vlm = !init.empty() && (fs::exists(fs::path(init) / "llm") || [&] {
        const auto c = io::read_json(fs::path(init) / "config.json");
        return c.is_object() && c.contains("vision_config") && c.contains("text_config");
    }());
    if (is_vlm) {
        if (s.j.contains("tokenizer")) throw usage_error("--tokenizer: a VLM folder brings its own tokenizer");
        return train_vlm(s, run, model::read_layout(init), resume);
    }
    for (const char* k : {"image-folder", "conv", "freeze", "mixture", "data-registry", "bad-records", "workers"})
        if (s.j.contains(k)) throw usage_error(std::string("--") + k + " applies to VLM folders (--init with llm/ or a LLaVA-HF config)");
    // model and tokenizer
    fs::path tokenizer_dir = s.text("tokenizer", init);
    if (tokenizer_dir.empty()) throw usage_error("--init-config needs --tokenizer DIR (a folder with tokenizer.json)");
    const auto tok = tokenizer::load(tokenizer_dir);
    auto model = init.empty() ? llm::llama<float>(llm::llama_config::load(init_config)) : llm::llama<float>::load(init);
    if (init.empty()) model.init_weights(std::uint64_t(s.number("seed")));
    if (index_t(tok.vocab_size()) > model.config.vocab_size)
        throw config_error(tokenizer_dir.string() + ": the tokenizer has " + std::to_string(tok.vocab_size()) + " ids but the model's vocabulary is " +
                           std::to_string(model.config.vocab_size));
    if (index_t(s.number("seq-len")) > model.config.max_position_embeddings)
        throw usage_error("--seq-len " + train_settings::fmt(s.number("seq-len")) + " exceeds the model's max_position_embeddings " +
                          std::to_string(model.config.max_position_embeddings));
    const std::string lora_spec = s.text("lora");
    if (!lora_spec.empty()) {
        const auto cfg = lora::peft_config::parse(lora_spec);
        const index_t n = lora::attach(model, cfg, std::uint64_t(s.number("seed")));
        std::printf("lora: r=%lld alpha=%g on %lld linear layers; base weights frozen\n", (long long)cfg.r, cfg.alpha, (long long)n);
    }
    fs::create_directories(run);
    if (!resume) io::write_json(run / "config.json", run_config_of(s));  // first: a run killed from here on can be resumed
    if (resume)
        std::printf("vila %s: resuming %s (%.2f M parameters) on %d threads\n", vila::version(), run.c_str(), double(model.parameter_count()) / 1e6,
                    num_threads());
    else
        std::printf("vila %s: training %s (%.2f M parameters) on %d threads into %s\n", vila::version(),
                    init.empty() ? ("fresh weights from " + init_config).c_str() : init.c_str(), double(model.parameter_count()) / 1e6,
                    num_threads(), run.c_str());
    const std::string optimizer = s.text("optimizer", "adamw");
    auto go = [&](auto opt) {
        if (lora_spec.empty()) return run_training<train::freeze::all_trainable>(s, run, model, tok, tokenizer_dir, resume, std::move(opt));
        return run_training<train::freeze::lora_adapters>(s, run, model, tok, tokenizer_dir, resume, std::move(opt));
    };
    if (optimizer == "adamw") {
        optim::adamw_options ao;
        ao.lr = s.number("lr");
        ao.beta1 = s.number("beta1");
        ao.beta2 = s.number("beta2");
        ao.eps = s.number("eps");
        ao.weight_decay = s.number("weight-decay");
        return go(optim::adamw<float>(ao));
    }
    if (optimizer == "sgd") {
        optim::sgd_options so;
        so.lr = s.number("lr");
        so.momentum = s.number("momentum");
        so.weight_decay = s.number("weight-decay");
        return go(optim::sgd<float>(so));
    }
    throw usage_error("--optimizer '" + optimizer + "' is not adamw or sgd");
}
