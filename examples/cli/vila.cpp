// vila — the command line of vila.hpp (docs/cli.md).
//
//   vila tokenize --tokenizer PATH [--input FILE] [--name NAME] [--decode]
//   vila train-tokenizer --input FILE [--input FILE]... --vocab-size N --out DIR
//
// Every subcommand reads and writes JSON Lines, exits non-zero with one clear line on bad input,
// and never leaves a half-written output line.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <vila/tokenizer/bpe_trainer.hpp>
#include <vila/tokenizer/tokenizer.hpp>
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

int cmd_train_tokenizer(args a) {
    const auto inputs = a.take_all("--input");
    const std::string out = a.take("--out");
    const std::string vs = a.take("--vocab-size");
    const std::string mf = a.take("--min-frequency");
    auto specials = a.take_all("--special");
    a.done();
    if (inputs.empty() || out.empty() || vs.empty()) throw usage_error("train-tokenizer needs --input, --vocab-size and --out");
    vila::tokenizer::bpe_trainer_options opt;
    try {
        opt.vocab_size = std::stoul(vs);
        if (!mf.empty()) opt.min_frequency = std::stoull(mf);
    } catch (const std::exception&) {
        throw usage_error("--vocab-size and --min-frequency take positive integers");
    }
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

}  // namespace

int main(int argc, char** argv) {
    try {
        if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
            std::fputs(usage_text, argc < 2 ? stderr : stdout);
            return argc < 2 ? 2 : 0;
        }
        const std::string cmd = argv[1];
        args a{std::vector<std::string>(argv + 2, argv + argc)};
        if (cmd == "tokenize") return cmd_tokenize(std::move(a));
        if (cmd == "train-tokenizer") return cmd_train_tokenizer(std::move(a));
        throw usage_error("unknown command '" + cmd + "'");
    } catch (const usage_error& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "vila: %s\n%s", e.what(), usage_text);
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
