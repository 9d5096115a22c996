// Malformed tokenizer files give vila::format_error naming the file and the field.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/tokenizer/tokenizer.hpp>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
using json = nlohmann::json;

namespace {
json minimal() {
    return json::parse(R"({
      "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
      "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null, "added_tokens": []})");
}
void expect_format_error(const json& j, const std::vector<std::string>& mention) {
    try {
        tokenizer::tokenizer::from_json(j, "bad/tokenizer.json");
        FAIL("no format_error");
    } catch (const format_error& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.find("bad/tokenizer.json") != std::string::npos, msg);
        for (const auto& m : mention) CHECK_MESSAGE(msg.find(m) != std::string::npos, msg, " lacks ", m);
    }
}
}  // namespace

TEST_CASE("a minimal valid tokenizer.json works") {
    const auto t = tokenizer::tokenizer::from_json(minimal(), "ok.json");
    CHECK(t.encode("abab") == std::vector<tokenizer::token_id>{2, 2});
}

TEST_CASE("malformed tokenizer.json: each failure names the file and the field") {
    json j = minimal();
    j.erase("model");
    expect_format_error(j, {"model", "missing"});

    j = minimal();
    j["model"]["type"] = "WordPiece";
    expect_format_error(j, {"model.type", "WordPiece"});

    j = minimal();
    j["normalizer"] = {{"type", "Fancy"}};
    expect_format_error(j, {"normalizer.type", "unknown normalizer type 'Fancy'"});

    j = minimal();
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Nope"}}}}};
    expect_format_error(j, {"pre_tokenizer.pretokenizers[0].type", "Nope"});

    j = minimal();
    j["decoder"] = {{"type", "Mystery"}};
    expect_format_error(j, {"decoder.type", "Mystery"});

    j = minimal();
    j["model"]["merges"] = {"a c"};
    expect_format_error(j, {"model.merges[0]", "token 'c' is not in the vocabulary"});

    j = minimal();
    j["model"]["merges"] = {"a b c"};
    expect_format_error(j, {"model.merges[0]", "two tokens"});

    j = minimal();
    j["model"]["merges"] = {42};
    expect_format_error(j, {"model.merges[0]"});

    j = minimal();
    j["model"]["vocab"] = json::array();
    expect_format_error(j, {"model.vocab", "expected an object"});

    j = minimal();
    j["model"]["vocab"]["c"] = "three";
    expect_format_error(j, {"model.vocab['c']", "integer"});

    j = minimal();
    j["model"]["byte_fallback"] = "yes";
    expect_format_error(j, {"model.byte_fallback", "true or false"});

    j = minimal();
    j["added_tokens"] = {{{"id", 3}}};
    expect_format_error(j, {"added_tokens[0].content", "missing"});

    j = minimal();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(?<=x)y"}}}, {"behavior", "Isolated"}};
    expect_format_error(j, {"pre_tokenizer.pattern", "lookbehind"});

    j = minimal();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
    expect_format_error(j, {"pre_tokenizer.behavior", "Sideways"});

    j = minimal();
    j["model"]["unk_token"] = "<unk>";
    expect_format_error(j, {"unk_token", "<unk>"});
}

TEST_CASE("unreadable and truncated files") {
    namespace fs = std::filesystem;
    const fs::path dir = test::scratch_dir("vila_tokenizer_bad_input");
    CHECK_THROWS_AS(tokenizer::tokenizer::load(dir / "missing"), io_error);
    {
        std::ifstream src(test::tokenizer_dir("gpt2") / "tokenizer.json", std::ios::binary);
        std::string all((std::istreambuf_iterator<char>(src)), {});
        std::ofstream(dir / "tokenizer.json", std::ios::binary) << all.substr(0, all.size() / 2);
    }
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(dir), doctest::Contains("invalid JSON"), format_error);
    std::ofstream(dir / "tokenizer.json") << minimal().dump();
    std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<nope>"})";
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(dir), doctest::Contains("bos_token"), format_error);
    fs::remove_all(dir);
}

TEST_CASE("decoding an id outside the vocabulary is an error") {
    const auto t = tokenizer::tokenizer::from_json(minimal(), "ok.json");
    CHECK_THROWS_WITH_AS(t.decode({0, 99}), doctest::Contains("token id 99"), vila::error);
}
