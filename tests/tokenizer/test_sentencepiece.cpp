// SentencePiece tokenizer.model (issue 12, item 1): parity with the sentencepiece library on the
// shared corpus and edge cases for BPE and unigram models with the identity and nmt_nfkc
// normalizers, dummy prefix or none, whitespace folding, split digits, byte fallback, unknowns,
// user-defined and control pieces (tests/fixtures/sentencepiece, make_sentencepiece.py); a
// VILA1.5-3b-shaped llm/ folder with tokenizer.model and LLaMA-2's tokenizer_config.json, and
// VILA's tokenizer_image_token (tests/fixtures/checkpoints, make_checkpoints.py); bad files.
#include <filesystem>
#include <fstream>
#include <map>

#include <doctest/doctest.h>
#include <vila/model/checkpoint.hpp>
#include <vila/tokenizer/image_text.hpp>
#include <vila/tokenizer/stream_decoder.hpp>
#include <vila/tokenizer/tokenizer.hpp>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
namespace fs = std::filesystem;
using ids_t = std::vector<tokenizer::token_id>;

namespace {
fs::path sp_fixtures() { return fs::path(VILA_TEST_DATA_DIR) / "sentencepiece"; }
fs::path vila15_llm() { return fs::path(VILA_TEST_DATA_DIR) / "checkpoints" / "vila15_3b" / "llm"; }
}  // namespace

TEST_CASE("SentencePiece: without the library, a tokenizer.model is refused with a clear message") {
    if (tokenizer::has_sentencepiece) return;  // the other cases run instead
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(vila15_llm()), doctest::Contains("no SentencePiece support"), io_error);
}

TEST_CASE("SentencePiece: encode, pieces and decode equal the sentencepiece library's on the corpus (4 models)") {
    if (!tokenizer::has_sentencepiece) return;
    std::map<std::string, tokenizer::tokenizer> models;
    std::map<std::string, int> rows;
    for (const auto& r : test::read_jsonl(sp_fixtures() / "reference.jsonl")) {
        const std::string name = r["model"];
        if (!models.count(name)) models.emplace(name, tokenizer::tokenizer::load(sp_fixtures() / (name + ".model")));
        const auto& tok = models.at(name);
        const std::string text = r["text"];
        CAPTURE(name);
        CAPTURE(text);
        const ids_t want = r["ids"].get<ids_t>();
        const auto enc = tok.encode_with_tokens(text, false);
        CHECK(enc.ids == want);
        CHECK(enc.tokens == r["pieces"].get<std::vector<std::string>>());
        CHECK(tok.decode(want) == r["decoded"].get<std::string>());
        ids_t with_bos{1};  // LlamaTokenizer's default without a tokenizer_config.json: BOS, no EOS
        with_bos.insert(with_bos.end(), want.begin(), want.end());
        CHECK(tok.encode(text) == with_bos);
        ++rows[name];
    }
    CHECK(rows.size() == 4);
    for (const auto& row : rows) CHECK_MESSAGE(row.second >= 209, row.first);  // the whole corpus (clang 14: no structured binding in CHECK)
    const auto& uni = models.at("unigram_nfkc");
    CHECK(uni.token_to_id("<sep>").has_value());  // a user-defined piece
    CHECK(uni.is_special(*uni.token_to_id("<ctrl>")));  // a control piece
    CHECK_FALSE(uni.token_to_id("no such piece").has_value());  // not the library's unk answer
    CHECK(uni.decode({*uni.token_to_id("<ctrl>")}).empty());
}

TEST_CASE("SentencePiece: a VILA1.5-3b-shaped llm/ folder (tokenizer.model, LLaMA-2's tokenizer_config.json)") {
    if (!tokenizer::has_sentencepiece) return;
    const auto tok = tokenizer::tokenizer::load(vila15_llm());
    CHECK(tok.is_sentencepiece());
    CHECK(tok.vocab_size() == 1200);
    CHECK(tok.bos_id() == 1);
    CHECK(tok.eos_id() == 2);
    CHECK(tok.special_prefix() == ids_t{1});
    CHECK(tok.special_suffix().empty());
    // the added_tokens_decoder entries are matched in text, as transformers does
    CHECK(tok.encode("</s>", false) == ids_t{2});
    ids_t hello = tok.encode("Hello there", false);
    CHECK(tok.decode(hello) == "Hello there");
    hello.insert(hello.begin(), 1);
    hello.push_back(2);
    CHECK(tok.decode(hello, true) == "Hello there");
    CHECK(tok.decode(hello, false) == "<s> Hello there</s>");  // as transformers: the prefix space stripped only at the start
    // VILA's tokenizer_image_token: each piece between images on its own (a dummy prefix each)
    for (const auto& c : nlohmann::json::parse(std::ifstream(vila15_llm() / ".." / ".." / "vila15_3b.prompts.json"))) {
        const std::string prompt = c["prompt"];
        CAPTURE(prompt);
        ids_t got = tok.special_prefix();
        const auto body = tokenizer::encode_with_images(tok, prompt, model::image_placeholder);
        got.insert(got.end(), body.begin(), body.end());
        CHECK(got == c["ids"].get<ids_t>());
    }
    // streaming decode of a SentencePiece sequence gives the whole text
    const auto ids = tok.encode("Streaming: café, 12345 and ✓ done.", false);
    tokenizer::stream_decoder sd(tok);
    std::string streamed;
    for (auto id : ids) streamed += sd.push(id);
    streamed += sd.finish();
    CHECK(streamed == tok.decode(ids));
}

TEST_CASE("SentencePiece: bad files name the file and the problem") {
    if (!tokenizer::has_sentencepiece) return;
    const test::scratch_folder dir("vila_sentencepiece_bad");
    const fs::path good = sp_fixtures() / "llama_bpe.model";
    std::string bytes;
    {
        std::ifstream in(good, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (const std::size_t keep : {std::size_t(0), std::size_t(7), bytes.size() / 2}) {
        const fs::path f = dir.path / ("cut" + std::to_string(keep) + ".model");
        std::ofstream(f, std::ios::binary) << bytes.substr(0, keep);
        CAPTURE(keep);
        CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(f), doctest::Contains(f.string().c_str()), format_error);
    }
    std::ofstream(dir.path / "junk.model", std::ios::binary) << std::string(4096, '\xff');
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(dir.path / "junk.model"), doctest::Contains("not a valid SentencePiece model"),
                         format_error);
    // a tokenizer_config.json whose added token contradicts the model's piece at that id
    const fs::path folder = dir.path / "llm";
    fs::create_directories(folder);
    fs::copy_file(good, folder / "tokenizer.model");
    std::ofstream(folder / "tokenizer_config.json") << R"({"added_tokens_decoder": {"1": {"content": "<bos>", "special": true}}})";
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(folder), doctest::Contains("'<bos>' here but '<s>'"), format_error);
    std::ofstream(folder / "tokenizer_config.json") << R"({"added_tokens_decoder": {"x1": {"content": "<s>"}}})";
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(folder), doctest::Contains("must be a token id"), format_error);
    std::ofstream(folder / "tokenizer_config.json") << R"({"bos_token": "<nope>"})";
    CHECK_THROWS_WITH_AS(tokenizer::tokenizer::load(folder), doctest::Contains("'<nope>' is not in the tokenizer's vocabulary"),
                         format_error);
    const auto tok = tokenizer::tokenizer::load(good);
    CHECK_THROWS_WITH_AS(tok.decode({5000}), doctest::Contains("token id 5000"), vila::error);
}
