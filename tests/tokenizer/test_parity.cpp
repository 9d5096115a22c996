// Exact parity with HF tokenizers 0.22 on every reference case: ids, ids without special tokens,
// both decodes, and the decode-only cases (invalid UTF-8 included).
#include <doctest/doctest.h>
#include <vila/tokenizer/tokenizer.hpp>

#include "../support/tokenizer_data.hpp"

using namespace vila;
using namespace vila::test;

namespace {
void check_parity(const std::string& name) {
    const auto tok = tokenizer::tokenizer::load(tokenizer_dir(name));
    std::size_t cases = 0, failures = 0;
    for (const auto& r : read_jsonl(reference_dir(name) / (name + ".jsonl"))) {
        const std::string text = r.at("text");
        const auto ids = tok.encode(text, true);
        const auto ids_ns = tok.encode(text, false);
        const bool ok = ids == r.at("ids").get<std::vector<int>>() && ids_ns == r.at("ids_no_special").get<std::vector<int>>() &&
                        tok.decode(ids, false) == r.at("decoded").get<std::string>() &&
                        tok.decode(ids, true) == r.at("decoded_skip_special").get<std::string>();
        ++cases;
        if (!ok && ++failures <= 5) CHECK_MESSAGE(ok, name, " case ", r.at("id"), " (", r.at("cat"), "): ", text);
    }
    std::size_t dec = 0;
    for (const auto& r : read_jsonl(reference_dir(name) / "decode.jsonl")) {
        if (r.at("tokenizer") != name) continue;
        ++dec;
        const std::string got = tok.decode(r.at("ids").get<std::vector<int>>(), r.at("skip_special_tokens"));
        if (got != r.at("decoded").get<std::string>() && ++failures <= 10)
            CHECK_MESSAGE(false, name, " decode of ", r.at("ids").dump(), ": got ", got);
    }
    CHECK(cases == 209);
    CHECK(dec > 500);
    CHECK(failures == 0);
    MESSAGE(name << ": " << cases << " encode cases, " << dec << " decode cases, " << failures << " mismatches");
}
}  // namespace

TEST_CASE("tokenizer parity: gpt2 (byte-level BPE, GPT-2 regex)") { check_parity("gpt2"); }
TEST_CASE("tokenizer parity: mistral (SentencePiece-style BPE, byte fallback)") { check_parity("mistral"); }
TEST_CASE("tokenizer parity: qwen3 (NFC, Split regex, [a, b] merges)") { check_parity("qwen3"); }
TEST_CASE("tokenizer parity: llama2 (../shared)" * doctest::skip(!shared_available())) { check_parity("llama2"); }
TEST_CASE("tokenizer parity: llama2_media with <image> (../shared)" * doctest::skip(!shared_available())) {
    check_parity("llama2_media");
}
TEST_CASE("tokenizer parity: llama3 (ignore_merges, (?i:...) regex) (../shared)" * doctest::skip(!shared_available())) {
    check_parity("llama3");
}

TEST_CASE("encode_batch equals encode, on several threads") {
    const auto tok = tokenizer::tokenizer::load(tokenizer_dir("gpt2"));
    std::vector<std::string> texts;
    for (const auto& r : read_jsonl(repo_tokenizers() / "corpus.jsonl")) texts.push_back(r.at("text"));
    const auto batch = tok.encode_batch(texts, true, 2);
    REQUIRE(batch.size() == texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) CHECK(batch[i] == tok.encode(texts[i], true));
}

TEST_CASE("special tokens added at run time split the text and keep their ids") {
    auto tok = tokenizer::tokenizer::load(tokenizer_dir("mistral"));
    const auto ids = tok.add_special_tokens({"<image>", "</s>"});
    REQUIRE(ids.size() == 2);
    CHECK(ids[0] == 32000);  // new: after the 32000-entry vocabulary
    CHECK(ids[1] == 2);      // existing: unchanged
    CHECK(tok.vocab_size() == 32001);
    const auto enc = tok.encode("<image>\nDescribe", true);
    REQUIRE(enc.size() >= 3);
    CHECK(enc[0] == 1);
    CHECK(enc[1] == 32000);
    CHECK(tok.decode(enc, true) == "\nDescribe");
    CHECK(tok.is_special(32000));
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
}
