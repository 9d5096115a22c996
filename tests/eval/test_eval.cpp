// Evaluation: BLEU-1..4 and CIDEr-D against pycocoevalcap's numbers (tests/fixtures/eval/
// captions.json, made by make_eval.py), VQA normalization and the 10-annotator score against
// values worked out by hand from the VQA evaluation's rules; the model tasks (choice by
// log-likelihood, perplexity, VQA by generation) on the fixture VILA model, the choice scores
// checked against log-softmax of the model's logits.
#include <doctest/doctest.h>

#include "../support/fixtures.hpp"

using namespace vila;

TEST_CASE("BLEU-1..4 and CIDEr-D equal pycocoevalcap's Bleu(4) and Cider()") {
    int checked = 0;
    for (const auto& c : test::load_json_fixture("eval/captions.json").at("cases")) {
        CAPTURE(c.at("name").get<std::string>());
        const auto hyps = c.at("hypotheses").get<std::vector<std::string>>();
        const auto refs = c.at("references").get<std::vector<std::vector<std::string>>>();
        const auto b = eval::bleu(hyps, refs);
        const auto want = c.at("bleu").get<std::vector<double>>();
        REQUIRE(b.size() == 4);
        for (int k = 0; k < 4; ++k) CHECK(b[std::size_t(k)] == doctest::Approx(want[std::size_t(k)]).epsilon(1e-12));
        const auto ci = eval::cider(hyps, refs);
        CHECK(ci.score == doctest::Approx(c.at("cider").get<double>()).epsilon(1e-12));
        const auto each = c.at("cider_each").get<std::vector<double>>();
        REQUIRE(ci.per_caption.size() == each.size());
        for (std::size_t i = 0; i < each.size(); ++i) CHECK(ci.per_caption[i] == doctest::Approx(each[i]).epsilon(1e-12));
        ++checked;
    }
    CHECK(checked == 5);
    CHECK_THROWS_AS(eval::bleu({"a"}, {}), error);
    CHECK_THROWS_AS(eval::cider({"a"}, {{}}), error);
}

TEST_CASE("VQA answers are normalized as the VQA evaluation does, and scored over 10 annotators") {
    CHECK(eval::normalize_vqa_answer("Two dogs.") == "2 dogs");
    CHECK(eval::normalize_vqa_answer("  The red ball ") == "red ball");
    CHECK(eval::normalize_vqa_answer("dont know") == "don't know");
    CHECK(eval::normalize_vqa_answer("1,000") == "1000");         // a digit,digit text: punctuation removed
    CHECK(eval::normalize_vqa_answer("yes, it is") == "yes it is");  // touching a space: removed
    CHECK(eval::normalize_vqa_answer("t-shirt") == "t shirt");       // otherwise: a space
    CHECK(eval::normalize_vqa_answer("3.5") == "3.5");
    CHECK(eval::normalize_vqa_answer("end.") == "end");
    CHECK(eval::normalize_vqa_answer("An apple\tand\nA pear") == "apple and pear");

    CHECK(eval::vqa_score("Red.", {"red"}) == 1.0);  // one answer: exact match after normalization
    CHECK(eval::vqa_score("blue", {"red"}) == 0.0);
    // 3 of 10 annotators said "two": leaving each out, 2 or 3 matches remain: (3 * 2/3 + 7 * 1) / 10
    std::vector<std::string> ten = {"two", "two", "2", "3", "3", "3", "3", "3", "3", "three"};
    CHECK(eval::vqa_score("two", ten) == doctest::Approx(0.9));
    CHECK(eval::vqa_score("three", ten) == doctest::Approx(1.0));  // 7 say 3: every leave-one-out keeps >= 3
    // 1 of 10: (1 * 0 + 9 * 1/3) / 10
    ten = {"cat", "dog", "dog", "dog", "dog", "dog", "dog", "dog", "dog", "dog"};
    CHECK(eval::vqa_score("a cat", ten) == doctest::Approx(0.3));
    CHECK_THROWS_AS(eval::vqa_score("x", {}), error);
}

namespace {
namespace fs = std::filesystem;
using vila_model = vlm<vision::siglip, projector::mlp_downsample>;
struct fixture_vlm {
    model::layout layout = model::read_layout(fs::path(VILA_TEST_DATA_DIR) / "vlm" / "vila");
    vila_model m = vila_model::load(layout);
    tokenizer::tokenizer tok = tokenizer::load(layout.tokenizer_dir());
    vision::image_processor proc = model::load_image_processor(layout);
};
data::image_ref eval_image(const char* name) {
    return {fs::path(VILA_TEST_DATA_DIR) / "data" / "llava" / "images" / name, "", 0, 0, false};
}
}  // namespace

TEST_CASE("choice by log-likelihood sums log-softmax over the continuation's tokens, with and without images") {
    fixture_vlm f;
    std::vector<eval::choice_item> items = {
        {"text", "What colour is the sky? It is", {" blue.", " green.", " red and yellow."}, 0, {}, true, "blue"},
        {"image", "<image>\nthis is blick.<image>\nthis is", {" blick.", " dax."}, 1, {eval_image("red.png"), eval_image("blue.png")}, true, "dax"}};
    const auto r = eval::choice(f.m, f.tok, items, f.m.image_token_id, &f.proc);
    REQUIRE(r.items == 2);
    // independent: the text item's logits, log-softmax, summed at the continuation's positions
    for (std::size_t c = 0; c < items[0].choices.size(); ++c) {
        const auto s = eval::continuation_sample(f.tok, items[0].prompt, items[0].choices[c], f.m.image_token_id);
        const auto logits = f.m.forward({{s.ids, {}, 0}}).to_host();
        const index_t V = f.m.llm.config.vocab_size;
        double ll = 0;
        int n = 0;
        for (std::size_t t = 1; t < s.ids.size(); ++t) {
            if (s.labels[t] == nn::ignore_index) continue;
            const float* row = logits.data() + (t - 1) * std::size_t(V);
            double mx = row[0], z = 0;
            for (index_t v = 0; v < V; ++v) mx = std::max(mx, double(row[v]));
            for (index_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
            ll += double(row[s.ids[t]]) - mx - std::log(z);
            ++n;
        }
        CHECK(n >= 2);
        CHECK(r.log_likelihoods[0][c] == doctest::Approx(ll).epsilon(1e-4));
    }
    std::size_t best = 0;
    for (std::size_t c = 1; c < 3; ++c)
        if (r.log_likelihoods[0][c] > r.log_likelihoods[0][best]) best = c;
    CHECK(r.predictions[0] == best);
    // the image item: its images change the scores (they are used), and it is deterministic
    auto no_images = items[1];
    no_images.prompt = "this is blick. this is";
    no_images.images.clear();
    const auto again = eval::choice(f.m, f.tok, {items[1], no_images}, f.m.image_token_id, &f.proc);
    CHECK(again.log_likelihoods[0] == r.log_likelihoods[1]);
    CHECK(again.log_likelihoods[1] != r.log_likelihoods[1]);
    CHECK(r.accuracy == doctest::Approx(double(r.correct) / 2));
    CHECK_THROWS_AS(eval::continuation_sample(f.tok, "abc", "", f.m.image_token_id), error);
}

TEST_CASE("perplexity and VQA by generation on the fixture VILA model") {
    fixture_vlm f;
    const data::llava_source rows(fs::path(VILA_TEST_DATA_DIR) / "data" / "llava" / "rows.json");
    data::render_options ro;
    ro.image_token = f.m.image_token_id;
    std::vector<data::rendered> samples;
    double nll = 0;
    index_t n = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        samples.push_back(data::render(rows.get(i), f.tok, ro));
        const auto [sum, count] = eval::sample_nll(f.m, samples.back().s, eval::load_pixels(samples.back().images, &f.proc));
        nll += sum;
        n += count;
    }
    const auto p = eval::perplexity(f.m, samples, &f.proc);
    CHECK(p.tokens == n);
    CHECK(p.perplexity == doctest::Approx(std::exp(nll / double(n))));
    CHECK(p.perplexity > 1.0);

    std::vector<eval::vqa_item> items = {{"q1", "<image>\nWhat colour is the square?", {"red"}, {eval_image("red.png")}},
                                         {"q2", "Is it round?", {"no"}, {}}};
    const auto first = eval::vqa(f.m, f.tok, items, f.m.image_token_id, "vicuna_v1", &f.proc, 6);
    REQUIRE(first.predictions.size() == 2);
    // greedy generation is deterministic: the same answers, taken as references, score 1
    for (std::size_t i = 0; i < 2; ++i) items[i].answers = {first.predictions[i]};
    const auto second = eval::vqa(f.m, f.tok, items, f.m.image_token_id, "vicuna_v1", &f.proc, 6);
    CHECK(second.predictions == first.predictions);
    CHECK(second.accuracy == 1.0);
}

TEST_CASE("the strict metric is the greedy continuation cut at its first period, and captions are scored on lower-case words") {
    fixture_vlm f;
    CHECK(eval::caption_words("Two small, red circles.") == "two small red circles");
    CHECK(eval::caption_words("  A  large\tBLUE square!! ") == "a large blue square");
    std::vector<eval::choice_item> items = {
        {"a", "<image>\nthis is", {" x."}, 0, {eval_image("red.png")}, true, ""},
        {"b", "What colour is the sky? It is", {" x."}, 0, {}, true, ""}};
    const auto first = eval::exact(f.m, f.tok, items, f.m.image_token_id, &f.proc, 6);
    REQUIRE(first.items == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        // independently: greedy generation, decoded, cut at '.' or newline, trimmed
        std::string g = eval::greedy_text(f.m, f.tok, items[i].prompt, true, eval::load_pixels(items[i].images, &f.proc), f.m.image_token_id, 6);
        while (!g.empty() && (g.front() == ' ' || g.front() == '\n')) g.erase(g.begin());
        g = g.substr(0, g.find_first_of(".\n"));
        while (!g.empty() && g.back() == ' ') g.pop_back();
        CHECK(first.predictions[i] == g);
        items[i].answer_text = g;  // now the greedy output is the answer
    }
    CHECK(first.correct == std::size_t(first.predictions[0].empty()) + std::size_t(first.predictions[1].empty()));
    const auto second = eval::exact(f.m, f.tok, items, f.m.image_token_id, &f.proc, 6);
    CHECK(second.accuracy == 1.0);

    std::vector<eval::vqa_item> caps = {{"c0", "<image>\nDescribe the picture.", {"a red circle.", "one red circle."}, {eval_image("red.png")}},
                                        {"c1", "<image>\nDescribe the picture.", {"a blue square."}, {eval_image("blue.png")}}};
    const auto c = eval::caption(f.m, f.tok, caps, f.m.image_token_id, "vicuna_v1", &f.proc, 8);
    const auto answers = eval::answer_all(f.m, f.tok, caps, f.m.image_token_id, "vicuna_v1", &f.proc, 8, nullptr);
    CHECK(c.predictions == answers);
    const std::vector<std::string> hyps = {eval::caption_words(answers[0]), eval::caption_words(answers[1])};
    const std::vector<std::vector<std::string>> refs = {{"a red circle", "one red circle"}, {"a blue square"}};
    CHECK(c.cider == doctest::Approx(eval::cider(hyps, refs).score));
    CHECK(c.bleu4 == doctest::Approx(eval::bleu(hyps, refs, 4)[3]));
}
