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

namespace {
int failures = 0;
void check(bool ok, const std::string& what) {
    if (!ok) {
        std::cerr << "FAILED: " << what << "\n";
        ++failures;
    }
}
std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}
/// Runs a shell command with stdout and stderr to files; returns the exit status.
int run(const std::string& cmd, const std::filesystem::path& out, const std::filesystem::path& err) {
    const std::string full = cmd + " > '" + out.string() + "' 2> '" + err.string() + "'";
    const int rc = std::system(full.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
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
    int rc = run(vila + " tokenize --tokenizer " + tok + " --input '" + (data / "tokenizers" / "corpus.jsonl").string() + "'",
                 work / "out.jsonl", work / "err.txt");
    check(rc == 0, "tokenize exits 0 (stderr: " + slurp(work / "err.txt") + ")");
    const auto out = lines(slurp(work / "out.jsonl"));
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
    rc = run(vila + " tokenize --tokenizer " + tok + " --decode --input '" + (work / "ids.jsonl").string() + "'",
             work / "dec.jsonl", work / "err.txt");
    const auto dec = lines(slurp(work / "dec.jsonl"));
    check(rc == 0 && dec.size() == 2, "decode runs");
    if (dec.size() == 2) {
        check(nlohmann::json::parse(dec[0]).at("decoded") == "Hello world", "decode line 1");
        check(nlohmann::json::parse(dec[1]).at("decoded") == "I", "decode line 2 skips <|endoftext|>");
    }

    // 3. a malformed line 2
    std::ofstream(work / "bad.jsonl") << "{\"text\": \"fine\"}\n{\"text\": 42}\n{\"text\": \"never reached\"}\n";
    rc = run(vila + " tokenize --tokenizer " + tok + " --input '" + (work / "bad.jsonl").string() + "'", work / "bad_out.jsonl",
             work / "bad_err.txt");
    const std::string bad_out = slurp(work / "bad_out.jsonl"), bad_err = slurp(work / "bad_err.txt");
    check(rc != 0, "malformed line fails");
    check(bad_err.find("bad.jsonl:2:") != std::string::npos, "error names line 2: " + bad_err);
    check(lines(bad_out).size() == 1 && !bad_out.empty() && bad_out.back() == '\n', "exactly one complete line before the error");

    // 4. missing tokenizer
    rc = run(vila + " tokenize --tokenizer '" + (work / "nowhere").string() + "' < /dev/null", work / "m_out.txt", work / "m_err.txt");
    const std::string m_err = slurp(work / "m_err.txt");
    check(rc != 0 && m_err.find("no tokenizer file") != std::string::npos && lines(m_err).size() == 1,
          "missing tokenizer: one clear line: " + m_err);

    std::cout << (failures ? "FAILED" : "OK") << ": vila tokenize, " << out.size() << " corpus lines checked\n";
    return failures ? 1 : 0;
}
