// vila — the command line of vila.hpp (docs/cli.md).
//
//   vila tokenize --tokenizer PATH [--input FILE] [--name NAME] [--decode]
//   vila train-tokenizer --input FILE [--input FILE]... --vocab-size N --out DIR
//   vila make-world DIR [--seed S] [--image-size N]
//   vila eval --model DIR --task vqa|mc|icl|ppl --data FILE ...   (eval_command.hpp)
//   vila inspect --model DIR
//   vila logits --model DIR (--ids 1,2,3 | --prompt TEXT) [--image F]... [--conv NAME] --out F.safetensors
//   vila generate --model DIR (--prompt TEXT | --ids 1,2,3) [--image F]... [--conv NAME] [--max-new-tokens N
//                 --temperature T --top-k K --top-p P --repetition-penalty R --seed S --show-ids]
// A model folder is a text LLM (HF LLaMA layout) or a VLM (VILA layout or LLaVA-HF); VLMs go
// through vila::assistant.
//   vila perplexity --model DIR --text FILE
//   vila train ... | vila train --resume RUN_DIR      (train_command.hpp)
//   vila export --model DIR [--adapter A] --merge --out M
//
// Every subcommand reads and writes JSON Lines, exits non-zero with one clear line on bad input,
// and never leaves a half-written output line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <optional>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <vila/io/safetensors.hpp>
#include <vila/llm/generate.hpp>
#include <vila/llm/llama.hpp>
#include <vila/tokenizer/bpe_trainer.hpp>
#include <vila/tokenizer/tokenizer.hpp>
#include <vila/data/text.hpp>
#include <vila/model/assistant.hpp>
#include <vila/model/lora.hpp>
#include <vila/optim/sgd.hpp>
#include <vila/train/trainer.hpp>
#include <vila/vila.hpp>

namespace {

struct usage_error : vila::error {
    using vila::error::error;
};

const char* const usage_text =
    "usage: vila <command> [options]\n"
    "commands:\n"
    "  tokenize --tokenizer PATH [--input FILE] [--name NAME]\n"
    "      reads JSONL {\"text\": ...}; writes {\"tokenizer\", \"text\", \"ids\", \"ids_no_special\", \"tokens\",\n"
    "      \"decoded\", \"decoded_skip_special\"} per line\n"
    "  tokenize --tokenizer PATH --decode [--input FILE] [--name NAME]\n"
    "      reads JSONL {\"ids\": [...], \"skip_special_tokens\": bool}; writes {\"tokenizer\", \"ids\",\n"
    "      \"skip_special_tokens\", \"decoded\"}\n"
    "  train-tokenizer --input FILE [--input FILE]... --vocab-size N --out DIR [--min-frequency N]\n"
    "                  [--special TOKEN]...\n"
    "      trains a byte-level BPE on the lines of the files; writes DIR/tokenizer.json\n"
    "  make-world DIR [--seed S] [--image-size N]\n"
    "      writes the synthetic world (docs/data.md): pictures of shapes as COYO-like pairs in tar shards,\n"
    "      MMC4-like documents, LLaVA instructions, a text knowledge domain, FLAN rows, held-out eval sets\n"
    "  inspect --model DIR\n"
    "      config, parameter count, tensors; a VLM: its vision tower, projector and LLM\n"
    "  logits --model DIR (--ids 1,2,3 | --prompt TEXT) [--image F]... [--conv NAME] --out F.safetensors\n"
    "      writes tensor \"logits\" [tokens, vocab] (fp32); with images, tokens count each image's features\n"
    "  generate --model DIR (--prompt TEXT | --ids 1,2,3) [--image F]... [--conv NAME] [--max-new-tokens N]\n"
    "           [--temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--show-ids]\n"
    "      streams the continuation to stdout (--show-ids: token ids instead of text). VLM prompts mark\n"
    "      images with <image> (one per --image, in order; none: the images go first);\n"
    "      --conv: none (default), vicuna_v1, llama_3, hermes-2, plain, auto (the tokenizer's chat_template)\n"
    "  perplexity --model DIR --text FILE\n"
    "      mean next-token loss and perplexity of the file's text\n"
    "  train (--init MODEL_DIR | --init-config CONFIG.json --tokenizer DIR) --data FILE.jsonl --out RUN_DIR ...\n"
    "  train --resume RUN_DIR\n"
    "      trains a text LLM with checkpoints and exact resume (vila train --help)\n"
    "  eval --model DIR --task vqa|mc|icl|ppl --data FILE [--conv T] [--limit N] [--out RESULTS.json]\n"
    "      VQA accuracy, multiple choice and in-context choice by log-likelihood, perplexity (vila eval --help)\n"
    "  export --model DIR [--adapter A] --merge --out M\n"
    "      writes M: the model with its LoRA adapter merged into the weights (loads without PEFT)\n"
    "  logits, generate and perplexity take --adapter A (a PEFT LoRA folder); a model folder holding\n"
    "  adapter_config.json uses its own adapter.\n"
    "  Every command takes --threads N (default: OMP_NUM_THREADS, else all cores) and --precision fp32|bf16\n"
    "  (bf16: matrix products with bf16 operands and fp32 accumulation, weights and optimizer in fp32;\n"
    "  oneDNN's AVX512-BF16 kernel where built and supported, else emulated at fp32 speed; default fp32).\n"
    "  PATH is a folder with tokenizer.json (and tokenizer_config.json) or a tokenizer.json file;\n"
    "  NAME (default: the folder's name) is copied into every output line; input defaults to stdin.\n";

struct args {
    std::vector<std::string> v;
    std::vector<std::string> take_all(const std::string& flag) {
        std::vector<std::string> out;
        for (std::string v; !(v = take(flag)).empty();) out.push_back(v);
        return out;
    }
    std::string take(const std::string& flag) {
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v[i] == flag) {
                if (i + 1 >= v.size()) throw usage_error("missing value after " + flag);
                std::string val = v[i + 1];
                v.erase(v.begin() + std::ptrdiff_t(i), v.begin() + std::ptrdiff_t(i) + 2);
                return val;
            }
        return {};
    }
    bool flag(const std::string& f) {
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v[i] == f) {
                v.erase(v.begin() + std::ptrdiff_t(i));
                return true;
            }
        return false;
    }
    void done() const {
        if (!v.empty()) throw usage_error("unknown argument '" + v.front() + "'");
    }
};

/// Output JSON is valid UTF-8 whatever the input: invalid bytes are replaced.
std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

int cmd_tokenize(args a) {
    const std::string path = a.take("--tokenizer");
    const std::string input = a.take("--input");
    std::string name = a.take("--name");
    const bool decode = a.flag("--decode");
    a.done();
    if (path.empty()) throw usage_error("tokenize needs --tokenizer PATH");
    const auto tok = vila::tokenizer::tokenizer::load(path);
    if (name.empty()) {
        std::filesystem::path p(path);
        if (!std::filesystem::is_directory(p)) p = p.parent_path();
        name = std::filesystem::absolute(p).lexically_normal().filename().string();
        if (name.empty()) name = std::filesystem::absolute(p).lexically_normal().parent_path().filename().string();
    }
    std::ifstream file;
    if (!input.empty()) {
        file.open(input, std::ios::binary);
        if (!file) throw vila::io_error("cannot open input " + input);
    }
    std::istream& in = input.empty() ? std::cin : file;
    const std::string where = input.empty() ? std::string("<stdin>") : input;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            throw vila::format_error(where + ":" + std::to_string(n) + ": invalid JSON: " + e.what());
        }
        const auto fail = [&](const std::string& why) { throw vila::format_error(where + ":" + std::to_string(n) + ": " + why); };
        nlohmann::json out;
        out["tokenizer"] = name;
        if (decode) {
            if (!j.is_object() || !j.contains("ids") || !j["ids"].is_array()) fail("expected {\"ids\": [...]}");
            std::vector<vila::tokenizer::token_id> ids;
            for (const auto& v : j["ids"]) {
                if (!v.is_number_integer()) fail("ids must be integers");
                ids.push_back(vila::tokenizer::token_id(v.get<long long>()));
            }
            bool skip = false;
            if (j.contains("skip_special_tokens")) {
                if (!j["skip_special_tokens"].is_boolean()) fail("skip_special_tokens must be true or false");
                skip = j["skip_special_tokens"].get<bool>();
            }
            std::string decoded;
            try {
                decoded = tok.decode(ids, skip);
            } catch (const vila::error& e) {
                fail(e.what());
            }
            out["ids"] = ids;
            out["skip_special_tokens"] = skip;
            out["decoded"] = decoded;
        } else {
            if (!j.is_object() || !j.contains("text") || !j["text"].is_string()) fail("expected {\"text\": \"...\"}");
            const std::string text = j["text"].get<std::string>();
            const auto enc = tok.encode_with_tokens(text, true);
            out["text"] = text;
            out["ids"] = enc.ids;
            out["ids_no_special"] = tok.encode(text, false);
            out["tokens"] = enc.tokens;
            out["decoded"] = tok.decode(enc.ids, false);
            out["decoded_skip_special"] = tok.decode(enc.ids, true);
        }
        const std::string s = dump(out) + "\n";  // whole line at once: never half-written
        std::fwrite(s.data(), 1, s.size(), stdout);
    }
    std::fflush(stdout);
    return 0;
}

bool parse_number(const std::string& v, double& x);

enum number_kind { whole, real, real_open_below };
/// `text` as a finite number in [lo, hi] ((lo, hi] for real_open_below; an integer for whole),
/// or a usage error that says what the flag takes.
double checked_number(const char* flag, const std::string& text, double lo, double hi, number_kind kind) {
    double x = 0;
    const bool ok = parse_number(text, x) && x <= hi && (kind == real_open_below ? x > lo : x >= lo) && (kind != whole || x == std::floor(x));
    if (ok) return x;
    char range[96];
    std::snprintf(range, sizeof range, kind == real_open_below ? "in (%g, %g]" : "in [%g, %g]", lo, hi);
    throw usage_error(std::string(flag) + " expects " + (kind == whole ? "an integer " : "a number ") + range + ", got '" + text + "'");
}
/// The flag's value checked as above, or `def` when it is absent.
double number_arg(args& a, const char* flag, double def, double lo, double hi, number_kind kind) {
    const std::string v = a.take(flag);
    return v.empty() ? def : checked_number(flag, v, lo, hi, kind);
}

int cmd_train_tokenizer(args a) {
    const auto inputs = a.take_all("--input");
    const std::string out = a.take("--out");
    const std::string vs = a.take("--vocab-size");
    const std::string mf = a.take("--min-frequency");
    auto specials = a.take_all("--special");
    a.done();
    if (inputs.empty() || out.empty() || vs.empty()) throw usage_error("train-tokenizer needs --input, --vocab-size and --out");
    vila::tokenizer::bpe_trainer_options opt;
    opt.vocab_size = std::size_t(checked_number("--vocab-size", vs, 1, INT32_MAX, whole));
    if (!mf.empty()) opt.min_frequency = std::size_t(checked_number("--min-frequency", mf, 1, 1e15, whole));
    if (!specials.empty()) opt.special_tokens = specials;
    opt.progress = [](std::size_t done, std::size_t wanted) {
        std::fprintf(stderr, "merges %zu/%zu\n", done, wanted);
    };
    vila::tokenizer::bpe_trainer trainer(opt);
    std::vector<std::filesystem::path> files(inputs.begin(), inputs.end());
    trainer.feed_files(files);
    std::fprintf(stderr, "%zu distinct words\n", trainer.distinct_words());
    trainer.train_and_save(out);
    std::fprintf(stderr, "wrote %s/tokenizer.json\n", out.c_str());
    return 0;
}

int cmd_make_world(args a) {
    const std::string seed = a.take("--seed"), size = a.take("--image-size");
    vila::data::synthetic::world_options o;
    double x = 0;
    if (!seed.empty()) {
        if (!parse_number(seed, x) || x < 0 || x != std::floor(x) || x > 9007199254740992.0) throw usage_error("--seed expects a non-negative integer, got '" + seed + "'");
        o.seed = std::uint64_t(x);
    }
    if (!size.empty()) {
        if (!parse_number(size, x) || x < 16 || x > 1024 || x != std::floor(x)) throw usage_error("--image-size expects an integer from 16 to 1024, got '" + size + "'");
        o.image_size = int(x);
    }
    if (a.v.size() != 1) throw usage_error("make-world needs one folder: vila make-world DIR [--seed S] [--image-size N]");
    const std::string dir = a.v.front();
    a.v.clear();
    const auto t0 = std::chrono::steady_clock::now();
    const auto s = vila::data::synthetic::write_world(dir, o);
    std::printf("wrote the synthetic world (seed %llu) into %s: %zu files, %zu images, %.1f MB in %.1f s\n", (unsigned long long)o.seed,
                dir.c_str(), s.files, s.images, double(s.bytes) / 1e6,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::printf("train on it with: vila train --init VLM_DIR --data-registry %s/registry.json --data llava+flan --out RUN\n", dir.c_str());
    return 0;
}

std::vector<std::int32_t> parse_ids(const std::string& s) {
    std::vector<std::int32_t> out;
    std::size_t i = 0;
    while (i < s.size()) {
        std::size_t used = 0;
        long long v;
        try {
            v = std::stoll(s.substr(i), &used);
        } catch (const std::exception&) {
            throw usage_error("--ids expects comma-separated integers, got '" + s + "'");
        }
        if (v < 0 || v > INT32_MAX) throw usage_error("--ids: token id " + std::to_string(v) + " is outside [0, 2147483647]");
        out.push_back(std::int32_t(v));
        i += used;
        if (i < s.size() && s[i] != ',') throw usage_error("--ids expects comma-separated integers, got '" + s + "'");
        ++i;
    }
    if (out.empty()) throw usage_error("--ids is empty");
    return out;
}

bool has_tokenizer(const std::string& dir) { return vila::tokenizer::tokenizer::present(dir); }

/// A VILA-layout or LLaVA-HF folder (as opposed to a text-only LLM folder).
bool is_vlm(const std::string& dir) {
    std::ifstream in(std::filesystem::path(dir) / "config.json");
    if (!in) return false;
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return false;
    const std::string type = j.value("model_type", std::string());
    return type == "llava" || type == "llava_llama" || (j.contains("llm_cfg") && j.contains("vision_tower_cfg"));
}

/// A VLM prompt's ids and pixels from --ids/--prompt, --image and --conv.
struct vlm_prompt {
    std::vector<std::int32_t> ids;
    vila::model::images images;  // every tile's pixels and each image's tile grid (NVILA)
};
vlm_prompt vlm_prompt_of(args& a, vila::assistant& m) {
    const auto images = a.take_all("--image");
    const std::string ids = a.take("--ids"), conv = a.take("--conv"), text = a.take("--prompt");
    if (ids.empty() == text.empty()) throw usage_error("give exactly one of --ids or --prompt");
    vlm_prompt p;
    if (!ids.empty()) {
        if (!conv.empty()) throw usage_error("--conv applies to --prompt, not --ids");
        p.ids = parse_ids(ids);
    } else {
        p.ids = m.encode_prompt(vila::assistant::mark_images(text, images.size(), m.image_separator()), conv.empty() ? "none" : conv);
    }
    p.images = m.load_images(images);
    return p;
}

/// Prompt ids from --ids or --prompt (the model folder's tokenizer, with its special tokens).
/// A text LLM with its LoRA adapter: --adapter DIR, or the folder's own adapter_config.json
/// (as transformers loads a PEFT folder).
vila::llm::llama<float> load_llm(args& a, const std::string& dir) {
    auto m = vila::llm::llama<float>::load(dir);
    std::string adapter = a.take("--adapter");
    if (adapter.empty() && std::filesystem::exists(std::filesystem::path(dir) / "adapter_config.json")) adapter = dir;
    if (!adapter.empty()) {
        vila::lora::load_peft(m, adapter);
        std::fprintf(stderr, "adapter: %s (%lld LoRA layers)\n", adapter.c_str(), (long long)vila::lora::count(m));
    }
    return m;
}

std::vector<std::int32_t> prompt_ids(args& a, const std::string& model) {
    const std::string ids = a.take("--ids"), prompt = a.take("--prompt");
    if (ids.empty() == prompt.empty()) throw usage_error("give exactly one of --ids or --prompt");
    if (!ids.empty()) return parse_ids(ids);
    if (!has_tokenizer(model)) throw usage_error(model + " has no tokenizer.json or tokenizer.model: use --ids");
    return vila::tokenizer::load(model).encode(prompt, true);
}

int cmd_inspect(args a) {
    const std::string dir = a.take("--model");
    a.done();
    if (dir.empty()) throw usage_error("inspect needs --model DIR");
    if (is_vlm(dir)) {
        std::fputs(vila::assistant::load(dir).summary().c_str(), stdout);
        return 0;
    }
    auto m = vila::llm::llama<float>::load(dir);
    const auto& c = m.config;
    std::printf("model: %s (%s)\n", dir.c_str(), c.architecture.c_str());
    std::printf("  layers %lld, hidden %lld, intermediate %lld, heads %lld, kv heads %lld, head dim %lld\n", (long long)c.num_hidden_layers,
                (long long)c.hidden_size, (long long)c.intermediate_size, (long long)c.num_attention_heads,
                (long long)c.num_key_value_heads, (long long)c.head_dim);
    std::printf("  vocab %lld, max positions %lld, rope theta %g (%s), rms eps %g, tied embeddings %s\n", (long long)c.vocab_size,
                (long long)c.max_position_embeddings, c.rope_theta, c.scaling.type.c_str(), c.rms_norm_eps,
                c.tie_word_embeddings ? "yes" : "no");
    std::printf("  parameters: %lld (%.2f M)\n", (long long)m.parameter_count(), double(m.parameter_count()) / 1e6);
    vila::io::safetensors_checkpoint ck(dir);
    std::printf("tensors (%zu in %zu file%s):\n", ck.names().size(), ck.shard_count(), ck.shard_count() == 1 ? "" : "s");
    for (const auto& n : ck.names()) {
        const auto& i = ck.info(n);
        std::printf("  %-60s %-5s %s\n", n.c_str(), vila::io::dtype_name(i.type), vila::to_string(i.shape).c_str());
    }
    if (has_tokenizer(dir)) {
        const auto tok = vila::tokenizer::load(dir);
        std::printf("tokenizer: %zu ids, %zu added tokens\n", tok.vocab_size(), tok.added_tokens().size());
    }
    return 0;
}

int cmd_logits(args a) {
    const std::string dir = a.take("--model"), out = a.take("--out");
    if (dir.empty() || out.empty()) throw usage_error("logits needs --model DIR and --out FILE");
    if (is_vlm(dir)) {
        auto m = vila::assistant::load(dir);
        if (m.adapter_layers()) std::fprintf(stderr, "adapter: %s (%lld LoRA layers)\n", dir.c_str(), (long long)m.adapter_layers());
        const auto p = vlm_prompt_of(a, m);
        a.done();
        const auto logits = m.logits(p.ids, p.images);
        vila::io::save_safetensors(out, {{"logits", {logits.shape(), logits.to_host()}}}, {{"format", "pt"}});
        std::fprintf(stderr, "wrote logits %s to %s\n", vila::to_string(logits.shape()).c_str(), out.c_str());
        return 0;
    }
    const auto ids = prompt_ids(a, dir);
    auto m = load_llm(a, dir);
    a.done();
    const auto& logits = m.forward(vila::tensor<std::int32_t>::from_host({1, vila::index_t(ids.size())}, ids));
    vila::io::save_safetensors(out, {{"logits", {{vila::index_t(ids.size()), m.config.vocab_size}, logits.to_host()}}},
                               {{"format", "pt"}});
    std::fprintf(stderr, "wrote logits [%zu, %lld] to %s\n", ids.size(), (long long)m.config.vocab_size, out.c_str());
    return 0;
}

int cmd_generate(args a) {
    const std::string dir = a.take("--model");
    if (dir.empty()) throw usage_error("generate needs --model DIR");
    vila::llm::generate_options o;
    // docs/cli.md: temperature >= 0 (0 is greedy), top-p in (0, 1], top-k >= 0 (0 is off),
    // repetition penalty > 0, counts >= 0; all finite, integers where counted
    o.max_new_tokens = int(number_arg(a, "--max-new-tokens", 64, 0, 1 << 20, whole));
    o.temperature = number_arg(a, "--temperature", 0.0, 0, 1e6, real);
    o.top_k = int(number_arg(a, "--top-k", 0, 0, INT32_MAX, whole));
    o.top_p = number_arg(a, "--top-p", 1.0, 0, 1, real_open_below);
    o.repetition_penalty = number_arg(a, "--repetition-penalty", 1.0, 0, 1e6, real_open_below);
    o.seed = std::uint64_t(number_arg(a, "--seed", 0, 0, 9007199254740992.0, whole));
    const bool show_ids = a.flag("--show-ids");
    std::optional<vila::tokenizer::stream_decoder> text;
    auto print = [&](std::int32_t t) {  // text when there is a tokenizer, ids otherwise
        if (text && !show_ids) std::fputs(text->push(t).c_str(), stdout);
        else std::printf("%d ", t);
        std::fflush(stdout);
        return true;
    };
    auto end = [&] {
        if (text && !show_ids) std::fputs(text->finish().c_str(), stdout);
        std::printf("\n");
        return 0;
    };
    if (is_vlm(dir)) {
        auto m = vila::assistant::load(dir);
        if (m.adapter_layers()) std::fprintf(stderr, "adapter: %s (%lld LoRA layers)\n", dir.c_str(), (long long)m.adapter_layers());
        const auto p = vlm_prompt_of(a, m);
        a.done();
        if (m.has_tokenizer()) text.emplace(m.tokenizer());
        m.generate(p.ids, p.images, o, print);
        return end();
    }
    const auto ids = prompt_ids(a, dir);
    auto m = load_llm(a, dir);
    a.done();
    for (auto e : m.config.eos_token_ids) o.stop_tokens.push_back(std::int32_t(e));
    std::optional<vila::tokenizer::tokenizer> tok;
    if (has_tokenizer(dir)) {
        tok = vila::tokenizer::load(dir);
        if (tok->eos_id()) o.stop_tokens.push_back(*tok->eos_id());
        text.emplace(*tok);
    }
    vila::llm::generate(m, ids, o, print);
    return end();
}

int cmd_perplexity(args a) {
    const std::string dir = a.take("--model"), file = a.take("--text");
    if (dir.empty() || file.empty()) throw usage_error("perplexity needs --model DIR and --text FILE");
    auto m = load_llm(a, dir);
    a.done();
    if (!has_tokenizer(dir)) throw usage_error(dir + " has no tokenizer.json or tokenizer.model");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw vila::io_error("cannot open " + file);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const auto ids = vila::tokenizer::load(dir).encode(text, true);
    const std::size_t window = std::size_t(std::min<vila::index_t>(m.config.max_position_embeddings, 1024));
    double nll = 0;
    long long count = 0;
    for (std::size_t start = 0; start + 1 < ids.size(); start += window - 1) {  // windows overlap by one token
        const std::size_t n = std::min(window, ids.size() - start);
        const std::vector<std::int32_t> chunk(ids.begin() + std::ptrdiff_t(start), ids.begin() + std::ptrdiff_t(start + n));
        const auto t = vila::tensor<std::int32_t>::from_host({1, vila::index_t(n)}, chunk);
        m.forward(t);
        const auto r = m.loss(t);
        nll += double(r.loss) * double(r.count);
        count += r.count;
        if (start + n >= ids.size()) break;
    }
    if (!count) throw vila::error(file + ": fewer than two tokens");
    std::printf("tokens %lld  mean loss %.4f  perplexity %.3f\n", count, nll / double(count), std::exp(nll / double(count)));
    return 0;
}

/// The whole string as one finite number (no trailing characters).
bool parse_number(const std::string& v, double& x) {
    std::size_t used = 0;
    try {
        x = std::stod(v, &used);
    } catch (const std::exception&) {
        return false;
    }
    return used == v.size() && std::isfinite(x);
}

#include "train_command.hpp"
#include "eval_command.hpp"
#include "recipe_command.hpp"

int cmd_export(args a) {
    namespace fs = std::filesystem;
    const std::string dir = a.take("--model"), out = a.take("--out");
    const bool merge = a.flag("--merge");
    if (dir.empty() || out.empty()) throw usage_error("export needs --model DIR and --out DIR");
    if (!merge) throw usage_error("export needs --merge (it writes the model with its adapter folded in)");
    auto m = load_llm(a, dir);
    a.done();
    if (vila::lora::count(m) == 0) throw usage_error(dir + ": no adapter to merge (give --adapter DIR)");
    vila::lora::merge(m);
    vila::lora::detach(m);
    if (fs::exists(out) && fs::absolute(out) == fs::absolute(dir)) throw usage_error("--out must differ from --model");
    vila::io::write_folder(out, [&](const fs::path& tmp) {
        m.save_into(tmp);
        vila::train::copy_tokenizer_files(dir, tmp);
    });
    std::printf("wrote %s: %s with its adapter merged (a plain HF folder)\n", out.c_str(), dir.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
            std::fputs(usage_text, argc < 2 ? stderr : stdout);
            return argc < 2 ? 2 : 0;
        }
        const std::string cmd = argv[1];
        args a{std::vector<std::string>(argv + 2, argv + argc)};
        if (cmd != "train") {  // train records --threads in its run config itself
            const std::string threads = a.take("--threads");
            double n = 0;
            if (!threads.empty()) {
                if (!parse_number(threads, n) || n < 1 || n > 1024 || n != std::floor(n))
                    throw usage_error("--threads expects a count from 1 to 1024, got '" + threads + "'");
                vila::set_num_threads(int(n));
            }
        }
        if (const std::string p = a.take("--precision"); !p.empty()) {
            try {
                vila::backend::bf16::set_matmul_precision(vila::parse_precision(p));
            } catch (const vila::error&) {
                throw usage_error("--precision expects fp32 or bf16, got '" + p + "'");
            }
            if (vila::backend::bf16::matmul_precision() == vila::precision::bf16)
                std::fprintf(stderr, "vila: bf16 matrix products through %s\n",
                             vila::backend::bf16::to_string(vila::backend::bf16::active_kernel()));
        }
        if (cmd == "tokenize") return cmd_tokenize(std::move(a));
        if (cmd == "train-tokenizer") return cmd_train_tokenizer(std::move(a));
        if (cmd == "make-world") return cmd_make_world(std::move(a));
        if (cmd == "inspect") return cmd_inspect(std::move(a));
        if (cmd == "logits") return cmd_logits(std::move(a));
        if (cmd == "generate") return cmd_generate(std::move(a));
        if (cmd == "perplexity") return cmd_perplexity(std::move(a));
        if (cmd == "train") return cmd_train(std::move(a));
        if (cmd == "export") return cmd_export(std::move(a));
        if (cmd == "eval") return cmd_eval(std::move(a));
        throw usage_error("unknown command '" + cmd + "'");
    } catch (const usage_error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "vila: %s (see vila --help)\n", e.what());  // one line; --help prints the usage
        return 2;
    } catch (const vila::error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "vila: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "vila: error: %s\n", e.what());
        return 1;
    }
}
