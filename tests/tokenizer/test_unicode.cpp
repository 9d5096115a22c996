// Unicode layer: NFC/NFD/NFKC/NFKD against Unicode's conformance data, properties, UTF-8, and
// the regex engine's Oniguruma semantics.
#include <chrono>
#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <vila/tokenizer/regex.hpp>
#include <vila/tokenizer/unicode.hpp>

#include "../support/fixtures.hpp"

// (no `using namespace vila::tokenizer`: in a unity batch it would make `tokenizer::` ambiguous
// in the files after this one)
namespace unicode = vila::tokenizer::unicode;
using unicode::codepoint;
using vila::tokenizer::regex;

namespace {
std::vector<codepoint> parse_cps(const std::string& field) {
    std::vector<codepoint> out;
    std::istringstream in(field);
    for (std::string h; in >> h;) out.push_back(codepoint(std::stoul(h, nullptr, 16)));
    return out;
}
std::vector<std::string> matches(const regex& re, const std::string& s) {
    const auto cps = unicode::decode_utf8(s);
    std::vector<std::string> out;
    for (auto [a, b] : re.find_all(cps))
        out.push_back(unicode::encode_utf8(std::vector<codepoint>(cps.begin() + std::ptrdiff_t(a), cps.begin() + std::ptrdiff_t(b))));
    return out;
}
}  // namespace

TEST_CASE("normalization forms match Unicode's NormalizationTest sample") {
    std::ifstream in(vila::test::fixture_path("normalization_sample.txt"));
    REQUIRE(in);
    std::size_t n = 0, bad = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::vector<codepoint>> c;
        std::istringstream ls(line);
        for (std::string f; std::getline(ls, f, ';');) c.push_back(parse_cps(f));
        REQUIRE(c.size() == 5);
        ++n;
        const bool ok = unicode::normalize(c[0], unicode::normal_form::nfc) == c[1] &&
                        unicode::normalize(c[0], unicode::normal_form::nfd) == c[2] &&
                        unicode::normalize(c[0], unicode::normal_form::nfkc) == c[3] &&
                        unicode::normalize(c[0], unicode::normal_form::nfkd) == c[4];
        if (!ok && ++bad <= 5) CHECK_MESSAGE(ok, "line: ", line);
    }
    CHECK(n > 3000);
    CHECK(bad == 0);
}

TEST_CASE("code point properties") {
    for (codepoint c : {U'a', U'é', U'々', U'ー', U'ª', U'א', U'ก'}) CHECK(unicode::is_letter(c));
    for (codepoint c : {codepoint(0x301), codepoint(0x200D), U'😀'}) CHECK_FALSE(unicode::is_letter(c));
    for (codepoint c : {U'7', U'²', U'½', U'Ⅻ', U'〇', U'①', U'３'}) CHECK(unicode::is_number(c));
    for (codepoint c : {0x9u, 0x85u, 0xA0u, 0x1680u, 0x2028u, 0x202Fu, 0x3000u}) CHECK(unicode::is_white_space(c));
    for (codepoint c : {0x1Cu, 0x180Eu, 0x200Bu, 0xFEFFu}) CHECK_FALSE(unicode::is_white_space(c));
    CHECK(unicode::simple_fold(U'ſ') == U's');
    CHECK(unicode::simple_fold(U'K') == U'k');
    std::vector<codepoint> lower;
    unicode::append_lowercase(lower, U'İ');
    CHECK(lower == std::vector<codepoint>{U'i', 0x307});
}

TEST_CASE("UTF-8: lossy decoding replaces each maximal invalid subsequence") {
    CHECK(unicode::utf8_lossy("a\xE0\xA5" "b") == "a\xEF\xBF\xBD" "b");     // truncated sequence: one U+FFFD
    CHECK(unicode::utf8_lossy("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // two invalid bytes
    CHECK(unicode::utf8_lossy("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    CHECK(unicode::utf8_lossy("ok \xF0\x9F\x98\x80") == "ok \xF0\x9F\x98\x80");
    CHECK(unicode::is_valid_utf8("h\xC3\xA9"));
    CHECK_FALSE(unicode::is_valid_utf8("\xC0\xAF"));
}

TEST_CASE("regex: leftmost-first alternation, lookahead, case folding, counted repeats") {
    const regex llama3(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
    CHECK(matches(llama3, "He'S 12345 ok") == std::vector<std::string>{"He", "'S", " ", "123", "45", " ok"});
    CHECK(matches(llama3, "it'ſ") == std::vector<std::string>{"it", "'ſ"});  // ſ folds to s
    CHECK(matches(llama3, "a   b") == std::vector<std::string>{"a", "  ", " b"});  // \s+(?!\S) leaves one space
    CHECK(matches(llama3, "x\n\n  y") == std::vector<std::string>{"x", "\n\n", " ", " y"});
    const regex alt("ab|abc");
    CHECK(matches(alt, "abc") == std::vector<std::string>{"ab"});  // first alternative wins, not the longest
    const regex lazy("a+?");
    CHECK(matches(lazy, "aaa") == std::vector<std::string>{"a", "a", "a"});
    CHECK_THROWS_AS(regex("(?<=a)b"), vila::format_error);
    CHECK_THROWS_AS(regex("a{3,1}"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex("[abc"), doctest::Contains("missing ']'"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex("\\p{Nope}"), doctest::Contains("unknown Unicode property"), vila::format_error);
}

TEST_CASE("regex: empty loops, nested quantifiers and lookaheads match Oniguruma (HF tokenizers' engine)") {
    // tests/fixtures/make_regex_cases.py: Oniguruma's matches through tokenizers' Split
    const auto& cases = vila::test::load_json_fixture("regex/onig_cases.json");
    REQUIRE(cases.size() >= 30);
    for (const auto& c : cases) {
        const std::string pattern = c["pattern"];
        CAPTURE(pattern);
        const regex re(pattern);
        const auto text = unicode::decode_utf8(c["text"].get<std::string>());
        const auto t0 = std::chrono::steady_clock::now();
        const auto got = re.find_all(text);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::vector<std::pair<std::size_t, std::size_t>> want;
        for (const auto& m : c["matches"]) want.emplace_back(m[0].get<std::size_t>(), m[1].get<std::size_t>());
        CHECK(got == want);
        // hostile for a plain backtracker ((a|a)*b, .*.*.*x on 3,000 characters: hours or
        // the old step limit after seconds); memoized matching is linear: here well under 1 s
        if (c["hostile"].get<bool>()) CHECK(s < 1.0);
    }
}

TEST_CASE("regex: resources are bounded by construction (issue 14, row 5)") {
    // ((a{1000}){1000}){1000} would compile to 10^9 instructions
    CHECK_THROWS_WITH_AS(regex("((a{1000}){1000}){1000}"), doctest::Contains("exceeds 65536 instructions"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex("a{99999999999}"), doctest::Contains("repeat count above 100000"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex("a{1,2147483648}"), doctest::Contains("repeat count above"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex(std::string(300, '(') + "a" + std::string(300, ')')), doctest::Contains("nest deeper than 256"),
                         vila::format_error);
    CHECK_THROWS_WITH_AS(regex("a" + std::string(40, '?')), doctest::Contains("quantifiers on one atom"), vila::format_error);
    CHECK_THROWS_WITH_AS(regex("\\x{110000}"), doctest::Contains("bad \\x{...}"), vila::format_error);
    CHECK_THROWS_AS(regex("\\x{123456789}"), vila::format_error);
    CHECK(matches(regex("\\x{41}+"), "AAB") == std::vector<std::string>{"AA"});
    // (a?)* used to run 4-8 s and 850 MB before failing; Oniguruma matches it
    const regex empty_loop("(a?)*b");
    const std::string long_a(20000, 'a');
    CHECK(matches(empty_loop, long_a + "b") == std::vector<std::string>{long_a + "b"});
    CHECK(matches(regex(".*.*.*x"), std::string(5000, 'y')).empty());
}
