// The BPE trainer: deterministic merges, and a tokenizer.json that HF `tokenizers` encodes
// exactly like vila (tests/fixtures/trained_bpe.json, made by check_trained_bpe.py).
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/tokenizer/bpe_trainer.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

TEST_CASE("a trained BPE round-trips through HF tokenizers") {
    const auto& fx = test::load_json_fixture("trained_bpe.json");
    tokenizer::bpe_trainer_options opt;
    opt.vocab_size = fx.at("vocab_size");
    tokenizer::bpe_trainer trainer(opt);
    trainer.feed_files({test::fixture_path("bpe_train.txt")});
    const auto dir = test::scratch_dir("vila_test_bpe_trainer");
    trainer.train_and_save(dir);
    REQUIRE(std::filesystem::exists(dir / "tokenizer.json"));
    CHECK_FALSE(std::filesystem::exists(dir / "tokenizer.json.tmp"));  // written atomically

    const nlohmann::json written = nlohmann::json::parse(std::ifstream(dir / "tokenizer.json"));
    CHECK(written.at("model").at("merges") == fx.at("merges"));  // the very file Python checked
    const auto tok = tokenizer::tokenizer::load(dir);
    CHECK(tok.vocab_size() == fx.at("python_vocab_size").get<std::size_t>());
    const auto& texts = fx.at("texts");
    std::size_t bad = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
        const std::string t = texts[i];
        const bool ok = tok.encode(t, true) == fx.at("ids")[i].get<std::vector<int>>() &&
                        tok.encode(t, false) == fx.at("ids_no_special")[i].get<std::vector<int>>() &&
                        tok.decode(tok.encode(t, true)) == fx.at("decoded")[i].get<std::string>();
        if (!ok && ++bad <= 3) CHECK_MESSAGE(ok, "text ", i, ": ", t);
    }
    CHECK(bad == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("trainer: merges lower the token count and respect the vocabulary size") {
    tokenizer::bpe_trainer_options opt;
    opt.vocab_size = 300;
    tokenizer::bpe_trainer trainer(opt);
    for (int i = 0; i < 50; ++i) trainer.feed("the cat sat on the mat with the other cat");
    const auto j = trainer.train();
    // a 9-word corpus runs out of pairs seen twice before 300: training stops early, never beyond
    const auto size = j.at("model").at("vocab").size();
    CHECK(size > 257);
    CHECK(size <= 300);
    CHECK(j.at("model").at("merges").size() == size - 257);
    const auto tok = tokenizer::tokenizer::from_json(j, "trained");
    CHECK(tok.encode(" the cat", false).size() <= 2);
    tokenizer::bpe_trainer_options tiny;
    tiny.vocab_size = 100;  // below the 256 bytes
    CHECK_THROWS_AS(tokenizer::bpe_trainer{tiny}, config_error);
}
