// Jinja chat templates (issue 12, item 5): renders equal to transformers' apply_chat_template
// renderer, byte for byte, with the {% generation %} ranges, for Qwen3's and Llama 3's real
// templates and four more (tests/fixtures/chat_templates, make_chat_templates.py); errors.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/tokenizer/jinja.hpp>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
namespace fs = std::filesystem;
using ojson = tokenizer::jinja::json;

namespace {
ojson read_ordered(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), p.string());
    return ojson::parse(in);
}
}  // namespace

TEST_CASE("Jinja chat templates render exactly as transformers' apply_chat_template") {
    const ojson fx = read_ordered(fs::path(VILA_TEST_DATA_DIR) / "chat_templates" / "cases.json");
    std::map<std::string, std::unique_ptr<tokenizer::jinja::template_source>> templates;
    for (const auto& [name, src] : fx["sources"].items())
        templates[name] = std::make_unique<tokenizer::jinja::template_source>(src.get<std::string>(), name);
    templates["qwen3"] = std::make_unique<tokenizer::jinja::template_source>(
        read_ordered(test::repo_tokenizers() / "qwen3" / "tokenizer_config.json")["chat_template"].get<std::string>(), "qwen3");
    const fs::path llama3 = test::shared_tokenizers() / "llama3" / "tokenizer_config.json";
    if (fs::exists(llama3))
        templates["llama3"] = std::make_unique<tokenizer::jinja::template_source>(read_ordered(llama3)["chat_template"].get<std::string>(), "llama3");
    else
        MESSAGE("llama3 cases skipped: ../shared/tokenizers/llama3 is not available");
    std::map<std::string, int> checked;
    for (const auto& c : fx["cases"]) {
        const std::string name = c["template"];
        if (!templates.count(name)) continue;
        CAPTURE(name);
        CAPTURE(c["context"]["messages"].dump());
        CAPTURE(c["context"]["add_generation_prompt"].get<bool>());
        const auto& t = *templates.at(name);
        if (c.contains("error")) {
            try {
                (void)t.render(c["context"]);
                FAIL("no error");
            } catch (const vila::error& e) {
                if (name == "mistral") CHECK_MESSAGE(std::string(e.what()).find(c["error"].get<std::string>()) != std::string::npos, e.what());
            }
        } else {
            const auto r = t.render(c["context"]);
            CHECK(r.text == c["text"].get<std::string>());
            std::vector<std::pair<std::size_t, std::size_t>> want;
            for (const auto& g : c["generation"]) want.emplace_back(g[0].get<std::size_t>(), g[1].get<std::size_t>());
            CHECK(r.generation == want);
        }
        ++checked[name];
    }
    for (const char* n : {"qwen3", "chatml", "mistral", "features", "vicuna_llava"}) CHECK_MESSAGE(checked[n] > 0, n);
}

TEST_CASE("Jinja: a conversation of 2000 messages renders within the step and size budgets (Qwen3's template)") {
    const tokenizer::jinja::template_source t(
        read_ordered(test::repo_tokenizers() / "qwen3" / "tokenizer_config.json")["chat_template"].get<std::string>(), "qwen3");
    ojson messages = ojson::array();
    for (int i = 0; i < 1000; ++i) {
        messages.push_back({{"role", "user"}, {"content", "Question " + std::to_string(i) + "?"}});
        messages.push_back({{"role", "assistant"}, {"content", "Answer " + std::to_string(i) + "."}});
    }
    const auto r = t.render({{"messages", messages}, {"tools", nullptr}, {"documents", nullptr}, {"add_generation_prompt", true}});
    CHECK(r.text.find("Answer 999.<|im_end|>\n<|im_start|>assistant\n") != std::string::npos);
}

TEST_CASE("Jinja: unsupported or malformed templates are errors naming the template and the line") {
    using tokenizer::jinja::template_source;
    auto fails = [](const std::string& src, const char* words) {
        try {
            template_source t(src, "bad.jinja");
            (void)t.render(ojson::object({{"messages", ojson::array()}}));
            FAIL("no error for: " << src);
        } catch (const format_error& e) {
            CHECK_MESSAGE(std::string(e.what()).find("bad.jinja") != std::string::npos, e.what());
            CHECK_MESSAGE(std::string(e.what()).find(words) != std::string::npos, e.what(), " lacks ", words);
        }
    };
    fails("{% macro m() %}x{% endmacro %}", "{% macro %} is not supported");
    fails("a\n{{ x | frobnicate }}", "line 2: the filter 'frobnicate' is not supported");
    fails("{% if true %}open", "missing {% endif %}");
    fails("{{ 'unterminated }}", "unterminated string");
    fails("{{ 1 / 0 }}", "division by zero");
    fails("{{ messages[0].role }}", "of an undefined value");
    fails("{% for x in 3 %}{% endfor %}", "cannot iterate");
    fails("{% endfor %}", "unexpected");
    // hostile templates: bounded stack, work and memory
    fails("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}", "nested more than 200 deep");
    std::string nested_ifs;
    for (int i = 0; i < 300; ++i) nested_ifs += "{% if true %}";
    fails(nested_ifs, "nested more than 200 deep");
    fails("{% for i in range(1000000) %}{{ 1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1+1 }}{% endfor %}", "steps");
    fails("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "bytes");
    fails("{{ 'x' * 1000000 * 1000 }}", "too large");
    try {
        template_source t("{{ raise_exception('Roles must alternate') }}", "raise.jinja");
        (void)t.render(ojson::object());
        FAIL("no error");
    } catch (const vila::error& e) {
        CHECK(std::string(e.what()).find("Roles must alternate") != std::string::npos);
    }
}
