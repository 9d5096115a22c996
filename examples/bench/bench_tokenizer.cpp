// bench_tokenizer — encode throughput of vila::tokenizer in MB/s (examples/bench/tokenizer_vs_hf.py
// runs it beside HF tokenizers' encode_batch on the same corpus and threads).
//
//   bench_tokenizer --tokenizer PATH --corpus FILE [--threads N] [--repeat R]
// Prints one JSON line: {"tokenizer", "threads", "bytes", "tokens", "seconds", "mb_per_s", "load_seconds"}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <vila/tokenizer/tokenizer.hpp>

int main(int argc, char** argv) {
    std::string tok_path, corpus;
    unsigned threads = 1;
    int repeat = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--tokenizer") tok_path = v;
        else if (a == "--corpus") corpus = v;
        else if (a == "--threads") threads = unsigned(std::stoul(v));
        else if (a == "--repeat") repeat = std::stoi(v);
    }
    if (tok_path.empty() || corpus.empty()) {
        std::fprintf(stderr, "usage: bench_tokenizer --tokenizer PATH --corpus FILE [--threads N] [--repeat R]\n");
        return 2;
    }
    try {
        const auto t0 = std::chrono::steady_clock::now();
        const auto tok = vila::tokenizer::tokenizer::load(tok_path);
        const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::vector<std::string> lines;
        std::size_t bytes = 0;
        std::ifstream in(corpus, std::ios::binary);
        for (std::string l; std::getline(in, l);) {
            bytes += l.size();
            lines.push_back(std::move(l));
        }
        double best = 1e30;
        std::size_t tokens = 0;
        for (int r = 0; r < repeat; ++r) {  // each repeat starts with cold word caches
            const auto a = std::chrono::steady_clock::now();
            const auto ids = tok.encode_batch(lines, true, threads);
            best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
            tokens = 0;
            for (const auto& v : ids) tokens += v.size();
        }
        std::printf("{\"tokenizer\": \"%s\", \"threads\": %u, \"bytes\": %zu, \"tokens\": %zu, \"seconds\": %.4f, "
                    "\"mb_per_s\": %.3f, \"load_seconds\": %.3f}\n",
                    tok_path.c_str(), threads, bytes, tokens, best, double(bytes) / best / 1e6, load_s);
        return 0;
    } catch (const vila::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
