// vila eval — evaluate a model folder (docs/cli.md). Included by vila.cpp inside its anonymous
// namespace (it uses args and usage_error).
//
//   vila eval --model DIR --task vqa|caption|mc|icl|ppl --data FILE [--conv T] [--image-folder DIR]
//             [--limit N] [--max-new-tokens N] [--out RESULTS.json]
// vqa: generated answers scored with VQAv2's normalization and 10-annotator rule; mc, icl: the
// choice with the highest log-likelihood; ppl: perplexity of any data source's samples. Prints a
// table, writes the results (with every prediction) as JSON.

const char* const eval_usage_text =
    "usage: vila eval --model DIR --task vqa|caption|mc|icl|ppl --data FILE [--conv none|vicuna_v1|llama_3|hermes-2|plain]\n"
    "                 [--image-folder DIR] [--limit N] [--max-new-tokens N] [--out RESULTS.json]\n"
    "  vqa  LLaVA-style rows (image, question, \"answer\": text or 10 annotators' list): greedy answers,\n"
    "       VQA accuracy (VQAv2 normalization; min(matches/3, 1) over 10 answers, else exact match)\n"
    "  caption  LLaVA-style rows (image, prompt, \"answer\": reference caption(s)): greedy captions, BLEU-4 and\n"
    "       CIDEr-D (pycocoevalcap's) after lower-casing and dropping punctuation\n"
    "  mc   JSONL {question, choices, answer}: the choice with the highest log-likelihood after the\n"
    "       chat template's prompt (MMLU-style, text only)\n"
    "  icl  JSONL {image: [...], prompt, choices, answer}: k-shot in-context episodes, scored the same way\n"
    "       (mc and icl also report strict_accuracy: the greedy continuation, cut at '.', equals the answer)\n"
    "  ppl  any training data file (formats as vila train reads them): perplexity of its labeled tokens\n";

struct eval_settings {
    std::string model, task, data, conv, image_folder, out;
    std::size_t limit = 0;
    int max_new_tokens = 16;
};

/// One JSON object per item: its id, then what `fill(entry, i)` adds.
template <class Items, class Fill>
nlohmann::json predictions_json(const Items& items, Fill&& fill) {
    nlohmann::json p = nlohmann::json::array();
    for (std::size_t i = 0; i < items.size(); ++i) {
        nlohmann::json e;
        e["id"] = items[i].id;
        fill(e, i);
        p.push_back(e);
    }
    return p;
}

template <class Model>
nlohmann::json run_eval(Model& m, const vila::tokenizer::tokenizer& tok, std::int32_t image_token, const vila::vision::image_processor* proc,
                        const eval_settings& s) {
    namespace fs = std::filesystem;
    using namespace vila;
    nlohmann::json r;
    r["task"] = s.task;
    r["model"] = s.model;
    r["data"] = s.data;
    auto limit = [&](auto v) {
        if (s.limit && v.size() > s.limit) v.resize(s.limit);
        return v;
    };
    auto progress = [&](std::size_t total) {
        return [total](std::size_t done) {
            if (done == total || done % std::max<std::size_t>(1, total / 10) == 0) std::fprintf(stderr, "eval: %zu/%zu\n", done, total);
        };
    };
    if (s.task == "vqa") {
        const auto items = limit(eval::read_vqa(s.data, s.image_folder));
        const auto res = eval::vqa(m, tok, items, image_token, s.conv.empty() ? "vicuna_v1" : s.conv, proc, s.max_new_tokens, progress(items.size()));
        r["items"] = res.items;
        r["accuracy"] = res.accuracy;
        r["predictions"] = predictions_json(items, [&](nlohmann::json& e, std::size_t i) {
            e["prediction"] = res.predictions[i];
            e["answers"] = items[i].answers;
        });
    } else if (s.task == "caption") {
        const auto items = limit(eval::read_vqa(s.data, s.image_folder));
        const auto res = eval::caption(m, tok, items, image_token, s.conv.empty() ? "vicuna_v1" : s.conv, proc, std::max(s.max_new_tokens, 32),
                                       progress(items.size()));
        r["items"] = res.items;
        r["cider"] = res.cider;
        r["bleu4"] = res.bleu4;
        r["predictions"] = predictions_json(items, [&](nlohmann::json& e, std::size_t i) {
            e["prediction"] = res.predictions[i];
            e["references"] = items[i].answers;
        });
    } else if (s.task == "mc" || s.task == "icl") {
        const auto items = limit(eval::read_choices(s.data, s.conv.empty() ? "vicuna_v1" : s.conv, s.image_folder));
        const auto res = eval::choice(m, tok, items, image_token, proc, progress(items.size()));
        const auto strict = eval::exact(m, tok, items, image_token, proc, s.max_new_tokens);
        r["items"] = res.items;
        r["accuracy"] = res.accuracy;
        r["strict_accuracy"] = strict.accuracy;
        r["predictions"] = predictions_json(items, [&](nlohmann::json& e, std::size_t i) {
            e["prediction"] = res.predictions[i];
            e["answer"] = items[i].answer;
            e["log_likelihoods"] = res.log_likelihoods[i];
            e["greedy"] = strict.predictions[i];
        });
    } else {  // ppl
        data::source_spec spec;
        spec.path = s.data;
        spec.image_folder = s.image_folder;
        const auto src = data::open_source(spec);
        data::render_options ro;
        ro.conv_template = s.conv.empty() ? "vicuna_v1" : s.conv;
        ro.image_token = image_token;
        std::vector<data::rendered> samples;
        const std::size_t n = s.limit ? std::min(s.limit, src->size()) : src->size();
        for (std::size_t i = 0; i < n; ++i) samples.push_back(data::render(src->get(i), tok, ro));
        const auto res = eval::perplexity(m, samples, proc);
        r["items"] = n;
        r["tokens"] = res.tokens;
        r["mean_nll"] = res.mean_nll;
        r["perplexity"] = res.perplexity;
    }
    return r;
}

int cmd_eval(args a) {
    namespace fs = std::filesystem;
    using namespace vila;
    if (a.flag("--help") || a.flag("-h")) {
        std::fputs(eval_usage_text, stdout);
        return 0;
    }
    eval_settings s;
    s.model = a.take("--model");
    s.task = a.take("--task");
    s.data = a.take("--data");
    s.conv = a.take("--conv");
    s.image_folder = a.take("--image-folder");
    s.out = a.take("--out");
    const std::string limit = a.take("--limit"), mnt = a.take("--max-new-tokens");
    a.done();
    double x = 0;
    if (!limit.empty()) {
        if (!parse_number(limit, x) || x < 1 || x != std::floor(x)) throw usage_error("--limit expects a positive integer, got '" + limit + "'");
        s.limit = std::size_t(x);
    }
    if (!mnt.empty()) {
        if (!parse_number(mnt, x) || x < 1 || x > 4096 || x != std::floor(x)) throw usage_error("--max-new-tokens expects 1 to 4096, got '" + mnt + "'");
        s.max_new_tokens = int(x);
    }
    if (s.model.empty() || s.task.empty() || s.data.empty()) throw usage_error("eval needs --model DIR, --task and --data FILE (see vila eval --help)");
    if (s.task != "vqa" && s.task != "caption" && s.task != "mc" && s.task != "icl" && s.task != "ppl")
        throw usage_error("--task '" + s.task + "' is not vqa, caption, mc, icl or ppl");
    if (!s.conv.empty() && s.conv != "none" && s.conv != "vicuna_v1" && s.conv != "v1" && s.conv != "llama_3" && s.conv != "hermes-2" &&
        s.conv != "plain")
        throw usage_error("--conv '" + s.conv + "' is not none, vicuna_v1, llama_3, hermes-2 or plain");
    const auto t0 = std::chrono::steady_clock::now();
    nlohmann::json r;
    if (is_vlm(s.model)) {
        const auto L = model::read_layout(s.model);
        const auto tok = tokenizer::load(L.tokenizer_dir());
        const auto proc = model::load_image_processor(L);
        r = model::visit_vlm_type(L, [&](auto tag) {
            auto m = decltype(tag)::type::load(L);
            if (std::filesystem::exists(fs::path(s.model) / "adapter_config.json")) lora::load_peft(m, s.model);
            return run_eval(m, tok, m.image_token_id, &proc, s);
        });
    } else {
        if (s.task == "vqa" || s.task == "caption" || s.task == "icl") throw usage_error(s.model + " is a text LLM: --task " + s.task + " needs a VLM folder");
        auto m = llm::llama<float>::load(s.model);
        if (std::filesystem::exists(fs::path(s.model) / "adapter_config.json")) lora::load_peft(m, s.model);
        const auto tok = tokenizer::load(s.model);
        r = run_eval(m, tok, std::numeric_limits<std::int32_t>::min(), nullptr, s);
    }
    r["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r["vila_version"] = vila::version();
    const long long n = r["items"].get<long long>();
    if (s.task == "ppl") {
        std::printf("%-8s %-8s %s\n%-8s %-8lld %.4f\n", "task", "items", "perplexity", s.task.c_str(), n, r["perplexity"].get<double>());
    } else if (s.task == "caption") {
        std::printf("%-8s %-8s %-8s %s\n%-8s %-8lld %-8.4f %.4f\n", "task", "items", "CIDEr", "BLEU-4", s.task.c_str(), n, r["cider"].get<double>(),
                    r["bleu4"].get<double>());
    } else if (s.task == "vqa") {
        std::printf("%-8s %-8s %s\n%-8s %-8lld %.2f%%\n", "task", "items", "accuracy", s.task.c_str(), n, 100.0 * r["accuracy"].get<double>());
    } else {
        std::printf("%-8s %-8s %-9s %s\n%-8s %-8lld %-8.2f%% %.2f%%\n", "task", "items", "accuracy", "strict", s.task.c_str(), n,
                    100.0 * r["accuracy"].get<double>(), 100.0 * r["strict_accuracy"].get<double>());
    }
    if (!s.out.empty()) io::write_json(s.out, r);
    return 0;
}
