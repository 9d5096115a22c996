// Where the tokenizer test data lives: copies of the permissively licensed tokenizers
// (tests/data/tokenizers: gpt2, mistral, qwen3) and ../shared/tokenizers (llama2, llama2_media,
// llama3: Meta licenses, not redistributed) when it exists.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vila::test {

inline std::filesystem::path repo_tokenizers() { return std::filesystem::path(VILA_TEST_DATA_DIR) / ".." / "data" / "tokenizers"; }
inline std::filesystem::path shared_tokenizers() { return std::filesystem::path(VILA_SHARED_DIR) / "tokenizers"; }
inline bool shared_available() { return std::filesystem::exists(shared_tokenizers() / "llama2" / "tokenizer.json"); }

/// The folder holding tokenizer `name`, and the folder holding its reference/*.jsonl.
inline std::filesystem::path tokenizer_dir(const std::string& name) {
    const auto local = repo_tokenizers() / name;
    return std::filesystem::exists(local) ? local : shared_tokenizers() / name;
}
inline std::filesystem::path reference_dir(const std::string& name) {
    return std::filesystem::exists(repo_tokenizers() / name) ? repo_tokenizers() / "reference" : shared_tokenizers() / "reference";
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    return out;
}

}  // namespace vila::test
