// Tests the `vila tokenize` command line as a user runs it (ctest: check_tokenize VILA DATA WORK):
//  1. the corpus through gpt2: exit 0, one line per input, every field equal to the reference
//  2. --decode on id lists
//  3. a malformed line: non-zero exit naming the line; earlier output complete, nothing partial
//  4. a missing tokenizer: non-zero exit, one clear line
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "check_support.hpp"

using namespace vila::cli_check;

namespace {
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: check_tokenize VILA DATA_DIR WORK_DIR\n";
        return 2;
    }
    const std::string vila = argv[1];
    const std::filesystem::path data = argv[2], work = argv[3];
    std::filesystem::create_directories(work);
    const std::string tok = "'" + (data / "tokenizers" / "gpt2").string() + "'";

    // 1. encode the corpus
    std::string so, se;
    int rc = run(vila + " tokenize --tokenizer " + tok + " --input '" + (data / "tokenizers" / "corpus.jsonl").string() + "'", work,
                 so, se);
    check(rc == 0, "tokenize exits 0 (stderr: " + se + ")");
    const auto out = lines(so);
    const auto ref = lines(slurp(data / "tokenizers" / "reference" / "gpt2.jsonl"));
    check(out.size() == ref.size(), "one output line per input (" + std::to_string(out.size()) + " vs " + std::to_string(ref.size()) + ")");
    for (std::size_t i = 0; i < std::min(out.size(), ref.size()); ++i) {
        const auto o = nlohmann::json::parse(out[i]), r = nlohmann::json::parse(ref[i]);
        for (const char* f : {"text", "ids", "ids_no_special", "tokens", "decoded", "decoded_skip_special"})
            check(o.at(f) == r.at(f), "line " + std::to_string(i + 1) + " field " + f);
        check(o.at("tokenizer") == "gpt2", "tokenizer name");
    }

    // 2. decode
    std::ofstream(work / "ids.jsonl") << "{\"ids\": [15496, 995], \"skip_special_tokens\": false}\n"
                                         "{\"ids\": [50256, 40], \"skip_special_tokens\": true}\n";
    rc = run(vila + " tokenize --tokenizer " + tok + " --decode --input '" + (work / "ids.jsonl").string() + "'", work, so, se);
    const auto dec = lines(so);
    check(rc == 0 && dec.size() == 2, "decode runs");
    if (dec.size() == 2) {
        check(nlohmann::json::parse(dec[0]).at("decoded") == "Hello world", "decode line 1");
        check(nlohmann::json::parse(dec[1]).at("decoded") == "I", "decode line 2 skips <|endoftext|>");
    }

    // 3. a malformed line 2
    std::ofstream(work / "bad.jsonl") << "{\"text\": \"fine\"}\n{\"text\": 42}\n{\"text\": \"never reached\"}\n";
    rc = run(vila + " tokenize --tokenizer " + tok + " --input '" + (work / "bad.jsonl").string() + "'", work, so, se);
    const std::string bad_out = so, bad_err = se;
    check(rc != 0, "malformed line fails");
    check(bad_err.find("bad.jsonl:2:") != std::string::npos, "error names line 2: " + bad_err);
    check(lines(bad_out).size() == 1 && !bad_out.empty() && bad_out.back() == '\n', "exactly one complete line before the error");

    // 4. missing tokenizer
    rc = run(vila + " tokenize --tokenizer '" + (work / "nowhere").string() + "'", work, so, se);
    const std::string m_err = se;
    check(rc != 0 && m_err.find("no tokenizer file") != std::string::npos && lines(m_err).size() == 1,
          "missing tokenizer: one clear line: " + m_err);

    std::cout << (failures ? "FAILED" : "OK") << ": vila tokenize, " << out.size() << " corpus lines checked\n";
    return failures ? 1 : 0;
}
