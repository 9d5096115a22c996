// vila/eval/metrics.hpp — the scores VLM papers report, computed as their reference tools do.
//   VQA accuracy: answers normalized as the VQA challenge's evaluation does (punctuation,
//     number words to digits, articles dropped, contractions restored); with several
//     annotators' answers, each annotator left out in turn and min(matches among the others /
//     3, 1) averaged (VQAv2's score: 10 answers, 3 matches for full credit); with one answer,
//     exact match after normalization.
//   BLEU-1..4 and CIDEr-D over whitespace-tokenized captions, as pycocoevalcap's Bleu(4)
//     (corpus statistics, the closest reference length for the brevity penalty) and Cider()
//     (tf-idf n-grams up to 4 with document frequencies from the references, sigma 6 length
//     penalty, clipped, x10) compute them; tests check both against pycocoevalcap's numbers.
// Captions are expected pre-tokenized (lowercase words separated by spaces), as pycocoevalcap's
// scorers take them after its PTB tokenizer.
#pragma once
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "../error.hpp"

namespace vila::eval {

namespace detail {
inline const std::unordered_map<std::string, std::string>& vqa_contractions() {
    static const std::unordered_map<std::string, std::string> m = {
        {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"}, {"couldnt", "couldn't"},
        {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"}, {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"},
        {"hadnt", "hadn't"}, {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"}, {"havent", "haven't"},
        {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"}, {"hes", "he's"}, {"howd", "how'd"}, {"howll", "how'll"},
        {"hows", "how's"}, {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"}, {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"},
        {"itd've", "it'd've"}, {"it'dve", "it'd've"}, {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
        {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"}, {"mustnt", "mustn't"},
        {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"}, {"oclock", "o'clock"}, {"oughtnt", "oughtn't"},
        {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"}, {"'ow'sat", "'ow's'at"}, {"shant", "shan't"}, {"shed've", "she'd've"},
        {"she'dve", "she'd've"}, {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"},
        {"shouldnt've", "shouldn't've"}, {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"},
        {"somebodyd've", "somebody'd've"}, {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"},
        {"somebodys", "somebody's"}, {"someoned", "someone'd"}, {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
        {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"}, {"somethingd've", "something'd've"},
        {"something'dve", "something'd've"}, {"somethingll", "something'll"}, {"thats", "that's"}, {"thered", "there'd"},
        {"thered've", "there'd've"}, {"there'dve", "there'd've"}, {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"},
        {"theyd've", "they'd've"}, {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
        {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"}, {"weve", "we've"}, {"werent", "weren't"},
        {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"}, {"whatve", "what've"}, {"whens", "when's"},
        {"whered", "where'd"}, {"wheres", "where's"}, {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"},
        {"who'dve", "who'd've"}, {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"},
        {"whys", "why's"}, {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"}, {"wouldnt've", "wouldn't've"},
        {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"}, {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"},
        {"y'alld've", "y'all'd've"}, {"y'all'dve", "y'all'd've"}, {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"},
        {"youll", "you'll"}, {"youre", "you're"}, {"youve", "you've"}};
    return m;
}
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline std::vector<std::string> split_words(const std::string& s) {
    std::vector<std::string> out;
    std::string w;
    for (char c : s) {
        if (is_space(c)) {
            if (!w.empty()) out.push_back(std::move(w)), w.clear();
        } else {
            w += c;
        }
    }
    if (!w.empty()) out.push_back(std::move(w));
    return out;
}
}  // namespace detail

/// The VQA evaluation's answer normalization (processPunctuation, then processDigitArticle).
inline std::string normalize_vqa_answer(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\t') c = ' ';
    // punctuation: removed where it touches a space (or the text has a digit,digit), else a space
    static const std::string punct = ";/[]\"{}()=+\\_-><@`,?!";
    bool digit_comma_digit = false;
    for (std::size_t i = 1; i + 1 < text.size(); ++i)
        digit_comma_digit = digit_comma_digit || (text[i] == ',' && detail::is_digit(text[i - 1]) && detail::is_digit(text[i + 1]));
    std::string out = text;
    for (char p : punct) {
        const bool touches = text.find(std::string(1, p) + " ") != std::string::npos || text.find(" " + std::string(1, p)) != std::string::npos;
        std::string next;
        for (char c : out) {
            if (c != p) next += c;
            else if (!(touches || digit_comma_digit)) next += ' ';
        }
        out = std::move(next);
    }
    // a period not followed by a digit goes (the reference's look-behind never matches)
    std::string no_periods;
    for (std::size_t i = 0; i < out.size(); ++i)
        if (!(out[i] == '.' && !(i + 1 < out.size() && detail::is_digit(out[i + 1])))) no_periods += out[i];
    // lowercase words; number words to digits; articles dropped; contractions restored
    for (char& c : no_periods) c = char(std::tolower(static_cast<unsigned char>(c)));
    static const std::unordered_map<std::string, std::string> numbers = {{"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"},
                                                                        {"three", "3"}, {"four", "4"}, {"five", "5"}, {"six", "6"},
                                                                        {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};
    std::string result;
    for (auto w : detail::split_words(no_periods)) {
        if (const auto it = numbers.find(w); it != numbers.end()) w = it->second;
        if (w == "a" || w == "an" || w == "the") continue;
        if (const auto it = detail::vqa_contractions().find(w); it != detail::vqa_contractions().end()) w = it->second;
        if (!result.empty()) result += ' ';
        result += w;
    }
    return result;
}

/// One question's VQA score in [0, 1] (see the top of this file).
inline double vqa_score(const std::string& prediction, const std::vector<std::string>& answers) {
    if (answers.empty()) throw error("vila::eval::vqa_score: no reference answer");
    const std::string p = normalize_vqa_answer(prediction);
    std::vector<std::string> a;
    for (const auto& s : answers) a.push_back(normalize_vqa_answer(s));
    if (a.size() == 1) return a[0] == p ? 1.0 : 0.0;
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        int matches = 0;
        for (std::size_t j = 0; j < a.size(); ++j) matches += j != i && a[j] == p;
        sum += std::min(1.0, matches / 3.0);
    }
    return sum / double(a.size());
}

namespace detail {
using ngram_counts = std::map<std::vector<std::string>, int>;
inline ngram_counts ngrams(const std::vector<std::string>& w, int n) {
    ngram_counts c;
    for (int k = 1; k <= n; ++k)
        for (std::size_t i = 0; i + std::size_t(k) <= w.size(); ++i) ++c[std::vector<std::string>(w.begin() + std::ptrdiff_t(i), w.begin() + std::ptrdiff_t(i) + k)];
    return c;
}
inline void check_caption_sets(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs, const char* who) {
    if (hyps.size() != refs.size()) throw error(std::string("vila::eval::") + who + ": " + std::to_string(hyps.size()) + " captions for " +
                                                std::to_string(refs.size()) + " reference sets");
    if (hyps.empty()) throw error(std::string("vila::eval::") + who + ": no captions");
    for (const auto& r : refs)
        if (r.empty()) throw error(std::string("vila::eval::") + who + ": a caption without references");
}
}  // namespace detail

/// Corpus BLEU-1..4 of hypotheses against reference sets (pycocoevalcap's Bleu(4)).
inline std::vector<double> bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs, int n = 4) {
    detail::check_caption_sets(hyps, refs, "bleu");
    std::vector<double> correct(std::size_t(n), 0.0), guess(std::size_t(n), 0.0);
    double testlen = 0, reflen = 0;
    for (std::size_t s = 0; s < hyps.size(); ++s) {
        const auto hw = detail::split_words(hyps[s]);
        std::map<std::vector<std::string>, int> maxc;
        std::vector<std::size_t> lens;
        for (const auto& r : refs[s]) {
            const auto rw = detail::split_words(r);
            lens.push_back(rw.size());
            for (const auto& [g, c] : detail::ngrams(rw, n)) maxc[g] = std::max(maxc[g], c);
        }
        // the closest reference length (ties: the shorter)
        std::size_t best = lens[0];
        for (auto l : lens) {
            const auto d = [&](std::size_t x) { return x > hw.size() ? x - hw.size() : hw.size() - x; };
            if (d(l) < d(best) || (d(l) == d(best) && l < best)) best = l;
        }
        testlen += double(hw.size());
        reflen += double(best);
        for (int k = 1; k <= n; ++k) guess[std::size_t(k - 1)] += double(hw.size() >= std::size_t(k) ? hw.size() - std::size_t(k) + 1 : 0);
        for (const auto& [g, c] : detail::ngrams(hw, n)) {
            const auto it = maxc.find(g);
            correct[g.size() - 1] += double(std::min(it == maxc.end() ? 0 : it->second, c));
        }
    }
    const double tiny = 1e-15, small = 1e-9;
    std::vector<double> out;
    double prod = 1;
    for (int k = 0; k < n; ++k) {
        prod *= (correct[std::size_t(k)] + tiny) / (guess[std::size_t(k)] + small);
        out.push_back(std::pow(prod, 1.0 / (k + 1)));
    }
    const double ratio = (testlen + tiny) / (reflen + small);
    if (ratio < 1)
        for (auto& b : out) b *= std::exp(1 - 1 / ratio);
    return out;
}

/// CIDEr-D of hypotheses against reference sets (pycocoevalcap's Cider()): the corpus mean and
/// each caption's score.
struct cider_result {
    double score = 0;
    std::vector<double> per_caption;
};
inline cider_result cider(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs) {
    detail::check_caption_sets(hyps, refs, "cider");
    constexpr int n = 4;
    const double sigma = 6.0;
    std::vector<std::vector<detail::ngram_counts>> crefs;
    std::map<std::vector<std::string>, double> df;
    for (const auto& set : refs) {
        crefs.emplace_back();
        std::set<std::vector<std::string>> seen;
        for (const auto& r : set) {
            crefs.back().push_back(detail::ngrams(detail::split_words(r), n));
            for (const auto& [g, c] : crefs.back().back()) seen.insert(g);
        }
        for (const auto& g : seen) df[g] += 1;
    }
    const double ref_len = std::log(double(refs.size()));
    struct vec {
        std::array<std::map<std::vector<std::string>, double>, n> w;
        std::array<double, n> norm{};
        double length = 0;  // pycocoevalcap counts the bigrams here
    };
    auto to_vec = [&](const detail::ngram_counts& cnts) {
        vec v;
        for (const auto& [g, tf] : cnts) {
            const auto it = df.find(g);
            const double d = std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
            const std::size_t k = g.size() - 1;
            const double x = double(tf) * (ref_len - d);
            v.w[k][g] = x;
            v.norm[k] += x * x;
            if (k == 1) v.length += tf;
        }
        for (auto& x : v.norm) x = std::sqrt(x);
        return v;
    };
    cider_result out;
    for (std::size_t s = 0; s < hyps.size(); ++s) {
        const vec h = to_vec(detail::ngrams(detail::split_words(hyps[s]), n));
        std::array<double, n> score{};
        for (const auto& rc : crefs[s]) {
            const vec r = to_vec(rc);
            const double delta = h.length - r.length;
            for (int k = 0; k < n; ++k) {
                double val = 0;
                for (const auto& [g, x] : h.w[std::size_t(k)]) {
                    const auto it = r.w[std::size_t(k)].find(g);
                    const double y = it == r.w[std::size_t(k)].end() ? 0.0 : it->second;
                    val += std::min(x, y) * y;
                }
                if (h.norm[std::size_t(k)] != 0 && r.norm[std::size_t(k)] != 0) val /= h.norm[std::size_t(k)] * r.norm[std::size_t(k)];
                val *= std::exp(-(delta * delta) / (2 * sigma * sigma));
                score[std::size_t(k)] += val;
            }
        }
        double mean = 0;
        for (double x : score) mean += x / n;
        out.per_caption.push_back(mean / double(crefs[s].size()) * 10.0);
    }
    for (double x : out.per_caption) out.score += x / double(out.per_caption.size());
    return out;
}

}  // namespace vila::eval
