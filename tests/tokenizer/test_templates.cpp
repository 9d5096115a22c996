// Conversation templates: exact ids and label masks against tests/fixtures/templates.json
// (HF tokenizers + offsets, made by make_templates.py), and the mismatch error.
#include <doctest/doctest.h>
#include <vila/tokenizer/chat_template.hpp>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
using namespace vila::test;

namespace {
tokenizer::conversation conv_from(const nlohmann::json& j) {
    tokenizer::conversation c;
    for (const auto& m : j) c.push_back({m.at("from"), m.at("value")});
    return c;
}
}  // namespace

TEST_CASE("templates render two images and two turns into the reference ids and labels") {
    std::size_t checked = 0;
    for (const auto& c : load_json_fixture("templates.json").at("cases")) {
        const std::string tok_name = c.at("tokenizer");
        if (!std::filesystem::exists(tokenizer_dir(tok_name) / "tokenizer.json")) {
            MESSAGE("skipped " << c.at("name").get<std::string>() << ": tokenizer " << tok_name << " not available");
            continue;
        }
        CAPTURE(c.at("name").get<std::string>());
        auto tok = tokenizer::tokenizer::load(tokenizer_dir(tok_name));
        if (c.contains("chat_template")) tok.set_chat_template(c.at("chat_template"));  // "auto" with {% generation %} blocks
        const auto image_ids = tok.add_special_tokens({tokenizer::image_placeholder});
        CHECK(image_ids[0] == c.at("image_id").get<int>());
        const auto got = tokenizer::render_conversation(c.at("template").get<std::string>(), tok, conv_from(c.at("conversation")));
        CHECK(got.ids == c.at("ids").get<std::vector<int>>());
        CHECK(got.labels == c.at("labels").get<std::vector<int>>());
        // image positions are never trained
        for (std::size_t i = 0; i < got.ids.size(); ++i)
            if (got.ids[i] == image_ids[0]) CHECK(got.labels[i] == tokenizer::ignore_label);
        ++checked;
    }
    CHECK(checked >= 4);  // the repo's own tokenizers always run
}

TEST_CASE("a template whose parts merge across a boundary is an error, not a silent zero loss") {
    auto tok = tokenizer::tokenizer::load(tokenizer_dir("qwen3"));
    // The answer starts with a newline: "\n\n" + "\nHello" tokenizes as "\n\n\n", so the
    // assistant header's tokens are no prefix of the whole.
    const tokenizer::conversation c{{"human", "Hi"}, {"gpt", "\nHello"}};
    CHECK_THROWS_WITH_AS(tokenizer::render_conversation<tokenizer::templates::llama_3>(tok, c),
                         doctest::Contains("tokenization mismatch at the end of turn 1"), vila::error);
}

TEST_CASE("templates reject malformed conversations") {
    auto tok = tokenizer::tokenizer::load(tokenizer_dir("gpt2"));
    using tokenizer::templates::vicuna_v1;
    CHECK_THROWS_WITH_AS(tokenizer::render_conversation<vicuna_v1>(tok, {}), doctest::Contains("empty"), vila::error);
    CHECK_THROWS_WITH_AS(tokenizer::render_conversation<vicuna_v1>(tok, {{"gpt", "a"}}), doctest::Contains("turn 0"),
                         vila::error);
    CHECK_THROWS_WITH_AS(tokenizer::render_conversation<vicuna_v1>(tok, {{"human", "a"}, {"robot", "b"}}),
                         doctest::Contains("unknown role 'robot'"), vila::error);
    CHECK_THROWS_AS(tokenizer::render_conversation("chatml", tok, {{"human", "a"}}), vila::config_error);
    // a generation prompt (last turn from the human) renders with nothing trained
    const auto p = tokenizer::render_conversation<vicuna_v1>(tok, {{"human", "Hello"}});
    for (auto l : p.labels) CHECK(l == tokenizer::ignore_label);
    CHECK(tok.decode(p.ids).size() > 0);
}
