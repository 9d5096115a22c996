// vila/data/synthetic.hpp — a small deterministic world to train and test VILA's recipe on a
// laptop, written in the real formats (PNG files, webdataset tar shards, MMC4 JSONL, LLaVA
// JSON, FLAN JSONL), so that everything downstream reads it as it reads real data.
//
// Pictures hold shapes (circle, square, triangle, diamond) with a colour (6), a size (small,
// large), a count (one to four) and a position; two-object scenes add a relation (left of,
// above). The world has:
//   pairs/        image-text pairs, COYO-like captions ("two small red circles."), tar shards
//   mmc4/         interleaved documents: each picture is given a made-up name right after it
//                 ("<image>\nblick."), and later sentences use the names by the pictures'
//                 content ("the red circles are blick."): the text depends on earlier images, so
//                 interleaving carries what pairs (and MMC4-pairs) do not; with `revisits`, new
//                 drawings of named kinds come back with their names; with `web_text`, passages
//                 of ordinary text (as the text LLM's own corpus) matched to no picture, as web
//                 pages have and MMC4-pairs drops. The name follows its
//                 picture directly (no "this is" between): with filler between key and label a
//                 small LLM learns only "repeat some name seen before" (SCIENCE.md, rule 3)
//   llava/        visual instructions: questions (colour, shape, count, size, relation),
//                 captions, two-picture comparisons
//   text/         a made-up knowledge domain (countries, capitals, flags, animals) as plain
//                 text for the LLM, and FLAN-style instructions about part of it; for the text
//                 LLM's own pre-training (stage 0): copy sequences (copy.jsonl), text
//                 in-context episodes shaped as the documents are ("kesa\nblick. ..."), so that
//                 the LLM can learn in context before it ever sees an image, and scenes
//                 described in words (descriptions.jsonl)
//   eval/         held out: 0-shot VQA (new pictures), k-shot in-context episodes whose answers
//                 are names given only in the demonstrations, text multiple choice about facts
//                 the instructions never asked, text in-context episodes (text_icl.jsonl),
//                 captions of the VQA pictures (captions.json)
//   registry.json names the training sets for `vila train --data-registry` (data/open.hpp);
//   world.json records the options and counts.
// Everything follows from the seed: the same seed writes byte-identical files (no dates; tar
// members with mtime, uid and gid 0). Paths inside JSON files are relative to the file's folder
// (images/ beside it), as the real datasets ship.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "../core/rng.hpp"
#include "../error.hpp"
#include "../io/folder.hpp"
#include "../io/tar.hpp"
#include "../vision/image.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#ifndef VILA_NO_STB_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include <stb_image_write.h>
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace vila::data::synthetic {

inline constexpr std::array<const char*, 4> shape_names = {"circle", "square", "triangle", "diamond"};
inline constexpr std::array<const char*, 6> colour_names = {"red", "green", "blue", "yellow", "purple", "orange"};
inline constexpr std::array<std::array<std::uint8_t, 3>, 6> colour_rgb = {
    {{220, 40, 40}, {40, 190, 60}, {50, 80, 230}, {235, 220, 50}, {160, 60, 200}, {245, 140, 30}}};
inline constexpr std::array<const char*, 2> size_names = {"small", "large"};
inline constexpr std::array<const char*, 5> number_names = {"zero", "one", "two", "three", "four"};

struct object {
    int shape = 0, colour = 0, size = 0;
    double x = 0.5, y = 0.5;  // centre, in [0, 1] of the picture
};

/// A picture: `count` copies of one kind of object, or two different objects in a relation.
struct scene {
    enum class kind { count, pair } type = kind::count;
    std::vector<object> objects;
    bool horizontal = true;  // pair: objects[0] is left of (true) or above (false) objects[1]
};

/// One kind of object (shape, colour, size) drawn `n` times in distinct cells of a 3 x 3 grid
/// (inside a margin that keeps a large object whole).
inline scene count_scene(rng& g, int shape, int colour, int size, int n) {
    scene s;
    std::array<int, 9> cells = {0, 1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 8; i > 0; --i) std::swap(cells[std::size_t(i)], cells[std::size_t(g.below(std::uint64_t(i) + 1))]);
    for (int i = 0; i < n; ++i) {
        const int c = cells[std::size_t(i)];
        s.objects.push_back({shape, colour, size, 0.12 + 0.76 * (c % 3 + 0.5 + g.uniform(-0.08, 0.08)) / 3.0,
                             0.12 + 0.76 * (c / 3 + 0.5 + g.uniform(-0.08, 0.08)) / 3.0});
    }
    return s;
}
inline scene random_count_scene(rng& g) {
    const int shape = int(g.below(4)), colour = int(g.below(6)), size = int(g.below(2)), n = 1 + int(g.below(4));
    return count_scene(g, shape, colour, size, n);
}
/// Two objects of different shape and colour, one left of (or above) the other.
inline scene random_pair_scene(rng& g) {
    scene s;
    s.type = scene::kind::pair;
    s.horizontal = g.below(2) == 0;
    object a{int(g.below(4)), int(g.below(6)), int(g.below(2))}, b{int(g.below(3)), int(g.below(5)), int(g.below(2))};
    if (b.shape >= a.shape) ++b.shape;  // different shape and colour: each is named unambiguously
    if (b.colour >= a.colour) ++b.colour;
    const double along0 = g.uniform(0.2, 0.32), along1 = g.uniform(0.68, 0.8), across0 = g.uniform(0.3, 0.7), across1 = g.uniform(0.3, 0.7);
    a.x = s.horizontal ? along0 : across0, a.y = s.horizontal ? across0 : along0;
    b.x = s.horizontal ? along1 : across1, b.y = s.horizontal ? across1 : along1;
    s.objects = {a, b};
    return s;
}

/// RGB pixels of a scene on a plain mid-grey background; 2x2 supersampled edges. The grey is
/// about CLIP's mean, so the background normalizes to ~0 and the objects carry the signal: on the
/// dark, noisy background of earlier versions a tower trained from nothing saw mostly a constant
/// (the background) and a per-picture noise pattern to memorise, and its features told pictures
/// apart by 1% of their norm; plain pictures are also 4x smaller as PNG.
inline vision::image draw(const scene& s, int size, rng&) {
    vision::image im;
    im.width = im.height = size;
    im.rgb.assign(std::size_t(size) * std::size_t(size) * 3, std::uint8_t(122));
    for (const auto& o : s.objects) {
        const double r = (o.size ? 0.1 : 0.06) * size, cx = o.x * size, cy = o.y * size;  // every shape fits in radius r
        auto inside = [&](double px, double py) {
            const double dx = px - cx, dy = py - cy;
            switch (o.shape) {
                case 0: return dx * dx + dy * dy <= r * r;
                case 1: return std::abs(dx) <= r * 0.85 && std::abs(dy) <= r * 0.85;
                case 2: return dy <= r * 0.8 && dy >= -r && std::abs(dx) <= (dy + r) * 0.5;
                default: return std::abs(dx) + std::abs(dy) <= r;
            }
        };
        const auto& rgb = colour_rgb[std::size_t(o.colour)];
        for (int y = std::max(0, int(cy - r - 2)); y < std::min(size, int(cy + r + 3)); ++y)
            for (int x = std::max(0, int(cx - r - 2)); x < std::min(size, int(cx + r + 3)); ++x) {
                int hits = 0;
                for (int sy = 0; sy < 2; ++sy)
                    for (int sx = 0; sx < 2; ++sx) hits += inside(x + 0.25 + 0.5 * sx, y + 0.25 + 0.5 * sy);
                if (!hits) continue;
                for (int c = 0; c < 3; ++c) {
                    auto& v = im.rgb[std::size_t((y * size + x) * 3 + c)];
                    v = std::uint8_t((v * (4 - hits) + rgb[std::size_t(c)] * hits) / 4);
                }
            }
    }
    return im;
}

/// PNG bytes of an image (stb_image_write: deterministic for the same pixels).
inline std::string png(const vision::image& im) {
    std::string out;
    auto sink = [](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), std::size_t(n)); };
    if (!stbi_write_png_to_func(sink, &out, int(im.width), int(im.height), 3, im.rgb.data(), int(im.width) * 3))
        throw error("vila::data::synthetic: PNG encoding failed");
    return out;
}

inline std::string plural(int shape) { return std::string(shape_names[std::size_t(shape)]) + "s"; }
/// "small red circle" (no article).
inline std::string describe(const object& o) {
    return std::string(size_names[std::size_t(o.size)]) + " " + colour_names[std::size_t(o.colour)] + " " + shape_names[std::size_t(o.shape)];
}
/// A COYO-like caption: "two small red circles." / "a large blue square left of a small green triangle."
inline std::string caption(const scene& s) {
    if (s.type == scene::kind::count) {
        const object& o = s.objects.front();
        const int n = int(s.objects.size());
        if (n == 1) return "a " + describe(o) + ".";
        return std::string(number_names[std::size_t(n)]) + " " + size_names[std::size_t(o.size)] + " " + colour_names[std::size_t(o.colour)] + " " +
               plural(o.shape) + ".";
    }
    return "a " + describe(s.objects[0]) + (s.horizontal ? " left of a " : " above a ") + describe(s.objects[1]) + ".";
}
/// "the red circles" / "the red circle": how later text refers to a count scene's objects.
inline std::string reference(const scene& s) {
    const object& o = s.objects.front();
    return std::string("the ") + colour_names[std::size_t(o.colour)] + " " + (s.objects.size() > 1 ? plural(o.shape) : shape_names[std::size_t(o.shape)]);
}

struct qa {
    std::string question, answer;
};
/// One question about a scene (colour, shape, count, size, relation), chosen by g.
inline qa question(const scene& s, rng& g) {
    if (s.type == scene::kind::count) {
        const object& o = s.objects.front();
        const bool many = s.objects.size() > 1;
        switch (g.below(4)) {
            case 0: return {"How many shapes are there?", number_names[s.objects.size()]};
            case 1: return {many ? "What colour are the shapes?" : "What colour is the shape?", colour_names[std::size_t(o.colour)]};
            case 2: return {many ? "What shape are they?" : "What shape is it?", shape_names[std::size_t(o.shape)]};
            default: return {many ? "Are the shapes small or large?" : "Is the shape small or large?", size_names[std::size_t(o.size)]};
        }
    }
    const object &a = s.objects[0], &b = s.objects[1];
    const std::string rel = s.horizontal ? "left of" : "above";
    switch (g.below(4)) {
        case 0: return {"What shape is " + rel + " the " + colour_names[std::size_t(b.colour)] + " " + shape_names[std::size_t(b.shape)] + "?",
                        shape_names[std::size_t(a.shape)]};
        case 1: return {"What colour is the " + std::string(shape_names[std::size_t(b.shape)]) + "?", colour_names[std::size_t(b.colour)]};
        case 2: return {"Is the " + std::string(shape_names[std::size_t(a.shape)]) + " " + rel + " the " + shape_names[std::size_t(b.shape)] + "?", "yes"};
        default: return {"Is the " + std::string(shape_names[std::size_t(b.shape)]) + " " + rel + " the " + shape_names[std::size_t(a.shape)] + "?", "no"};
    }
}

/// Made-up words (consonant-vowel-consonant, sometimes a fourth letter), never a word the
/// world uses otherwise, never the same twice from one namer.
class namer {
public:
    explicit namer(rng& g) : g_(&g) {
        for (const char* w : {"the", "this", "that", "red", "blue", "tan", "bed", "big", "dog", "cat", "sun", "fox", "owl", "not", "yes",
                              "man", "bad", "did", "has", "had", "was", "his", "her", "him", "its", "are", "for", "but", "top", "set",
                              "put", "got", "let", "sit", "fun", "run", "ran", "mad", "pen", "pin", "kid", "lot", "nut"})
            used_.insert(w);
    }
    std::string next() {
        static const char* cons = "bdfgklmnprstvz";
        static const char* vow = "aeiou";
        for (int tries = 0; tries < 100000; ++tries) {
            std::string w;
            w += cons[g_->below(14)];
            w += vow[g_->below(5)];
            w += cons[g_->below(14)];
            if (g_->below(3) == 0) w += vow[g_->below(5)];
            if (used_.insert(w).second) return w;
        }
        throw config_error("synthetic world: out of distinct made-up words (ask for fewer countries)");
    }

private:
    rng* g_;
    std::set<std::string> used_;
};

/// A made-up word as namer makes them, but drawn with replacement (for the many text episodes);
/// never one of the namer's reserved English words.
inline std::string made_up_word(rng& g) {
    static const char* cons = "bdfgklmnprstvz";
    static const char* vow = "aeiou";
    static const std::set<std::string> english = {"bad", "bed", "big", "did", "fun", "got", "had", "has", "kid", "let", "lot", "mad",
                                                  "man", "nut", "pen", "pin", "put", "ran", "red", "run", "set", "sit", "tan", "top"};
    for (;;) {
        std::string w;
        w += cons[g.below(14)];
        w += vow[g.below(5)];
        w += cons[g.below(14)];
        if (g.below(3) == 0) w += vow[g.below(5)];
        if (!english.count(w)) return w;
    }
}

/// A text in-context episode shaped as the world's documents read once rendered ("<image>\nblick."
/// with a word in the image's place: " kesa\nblick. dor\nvup. ... kesa\nblick."): `shots` distinct keys each followed by its label, then
/// `queries` keys seen before with their labels. Returns the text and, for a held-out episode
/// (queries = 0), the prompt's last key's label in `answer` after a final "KEY\n".
struct text_episode {
    std::string text, answer;
    std::vector<std::string> labels;
};
inline text_episode make_text_episode(rng& g, int shots, int queries) {
    std::vector<std::string> keys, labels;
    std::set<std::string> seen;
    while (int(keys.size()) < 2 * shots) {
        std::string w = made_up_word(g);
        if (seen.insert(w).second) keys.push_back(std::move(w));
    }
    labels.assign(keys.begin() + shots, keys.end());
    keys.resize(std::size_t(shots));
    text_episode e;
    // every key after a space, the first too: " blick" and "blick" are different tokens, and a
    // query must repeat its key's tokens exactly
    for (int i = 0; i < shots; ++i) e.text += " " + keys[std::size_t(i)] + "\n" + labels[std::size_t(i)] + ".";
    for (int q = 0; q < queries; ++q) {
        const std::size_t k = std::size_t(g.below(std::uint64_t(shots)));
        e.text += " " + keys[k] + "\n" + labels[k] + ".";
    }
    if (queries == 0) {
        const std::size_t k = std::size_t(g.below(std::uint64_t(shots)));
        e.text += " " + keys[k] + "\n";
        e.answer = labels[k];
    }
    e.labels = labels;
    return e;
}

/// The made-up knowledge domain: per country its name, capital, flag colour and animal.
inline std::vector<std::array<std::string, 4>> make_facts(rng& g, int countries) {
    namer names(g);
    const char* animals[] = {"owls", "foxes", "goats", "bees", "horses", "cats", "fish", "crows"};
    std::vector<std::array<std::string, 4>> facts;
    for (int c = 0; c < countries; ++c) facts.push_back({names.next(), names.next(), colour_names[g.below(6)], animals[g.below(8)]});
    return facts;
}
/// The two ways the knowledge domain states a country's facts.
inline std::string fact_text(const std::array<std::string, 4>& f, bool capital_first) {
    if (!capital_first) return "the capital of " + f[0] + " is " + f[1] + ". the flag of " + f[0] + " is " + f[2] + ". in " + f[0] + " people keep " + f[3] + ".";
    return f[1] + " is the capital of " + f[0] + ". people in " + f[0] + " keep " + f[3] + ", and their flag is " + f[2] + ".";
}

struct world_options {
    std::uint64_t seed = 0;
    int image_size = 64;
    int pairs = 120, shards = 2;                 // COYO-like pairs in tar shards
    int documents = 50, images_per_document = 2;  // MMC4-like
    int revisits = 0;                             // per document: new drawings of named kinds, named again
    int sft_images = 50, sft_rows = 100;          // LLaVA-like visual instructions
    int countries = 30, flan_countries = 20;      // knowledge domain; FLAN asks about the first 20
    int eval_vqa = 60, eval_icl = 40, icl_shots = 4, eval_text = 30;
    int copy_rows = 2000, text_icl_rows = 4000, descriptions = 1000;  // stage 0 data
    int eval_text_icl = 40;
    /// Passages of ordinary text per MMC4 document, matched to no picture, drawn as the text
    /// LLM's own pre-training text is (text in-context episodes, facts, descriptions, copy
    /// sequences): real MMC4 documents are web pages, ~122 text tokens per image against COYO's
    /// ~23 (REFERENCE.md), much of it text like an LLM's corpus. The MMC4-pairs reader drops
    /// them with the rest of the unmatched sentences, as VILA's ablation does. 0: none. Measured
    /// with 2 (docs/results.md): it did not keep the LLM's text ability through interleaved
    /// pre-training, and cost visual in-context learning on one seed; so the recipe's world has none.
    int web_text = 0;
};

/// The world sized for a recipe run: "ci" the defaults above (small, quick to write), any other
/// size the demo's (~31 MB, 10 700 pictures, ~15 s to write): stage 0 must not see an episode
/// twice (a small LLM memorises repeated sequences instead of learning to copy in context).
inline world_options recipe_world(const std::string& size, std::uint64_t seed) {
    world_options w;
    w.seed = seed;
    if (size == "ci") return w;
    w.pairs = 3000;
    w.shards = 4;
    w.documents = 1500;
    w.images_per_document = 4;
    w.revisits = 2;
    w.sft_images = 1000;
    w.sft_rows = 3000;
    w.flan_countries = 20;
    w.eval_vqa = 200;
    w.eval_icl = 100;
    w.eval_text = 60;
    w.eval_text_icl = 100;
    w.copy_rows = 40000;
    w.text_icl_rows = 100000;
    w.descriptions = 3000;
    return w;
}

struct world_summary {
    std::size_t files = 0, images = 0, bytes = 0;
};

namespace detail {
class world_writer {
public:
    world_writer(std::filesystem::path root, world_summary& sum) : root_(std::move(root)), sum_(&sum) {}
    void file(const std::string& rel, const std::string& bytes) {
        const auto p = root_ / rel;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream f(p, std::ios::binary);
        f.write(bytes.data(), std::streamsize(bytes.size()));
        f.close();
        if (!f) throw io_error("cannot write " + p.string());
        ++sum_->files;
        sum_->bytes += bytes.size();
    }
    void image(const std::string& rel, const vision::image& im) {
        file(rel, png(im));
        ++sum_->images;
    }
    void jsonl(const std::string& rel, const std::vector<nlohmann::json>& rows) {
        std::string s;
        for (const auto& r : rows) s += r.dump() + "\n";
        file(rel, s);
    }
    void json(const std::string& rel, const nlohmann::json& j) { file(rel, j.dump(1) + "\n"); }
    void tar(const std::string& rel, const std::vector<std::pair<std::string, std::string>>& members) {
        const auto p = root_ / rel;
        std::filesystem::create_directories(p.parent_path());
        io::write_tar(p, members);
        ++sum_->files;
        sum_->bytes += std::filesystem::file_size(p);
    }

private:
    std::filesystem::path root_;
    world_summary* sum_;
};

inline std::string key(int i) {
    char b[16];
    std::snprintf(b, sizeof b, "%09d", i);
    return b;
}
}  // namespace detail

/// Writes the world into `dir` (which must not exist) as a unit (io::write_folder): a world
/// folder is whole or absent.
inline world_summary write_world(const std::filesystem::path& dir, const world_options& o) {
    namespace fs = std::filesystem;
    if (fs::exists(dir)) throw io_error(dir.string() + " exists: choose a new folder for the world");
    if (o.image_size < 16 || o.image_size > 1024) throw config_error("synthetic world: image_size must be within [16, 1024]");
    if (o.pairs < 1 || o.shards < 1 || o.documents < 1 || o.images_per_document < 1 || o.revisits < 0 || o.images_per_document + o.revisits > 6 || o.sft_images < 2 ||
        o.sft_rows < 1 || o.countries < 4 || o.flan_countries < 1 || o.flan_countries > o.countries || o.eval_vqa < 1 || o.eval_icl < 1 ||
        o.icl_shots < 2 || o.icl_shots > 8 || o.eval_text < 1 || o.copy_rows < 0 || o.text_icl_rows < 0 || o.descriptions < 0 || o.eval_text_icl < 1 || o.web_text < 0 || o.web_text > 8)
        throw config_error("synthetic world: a count is out of range (images_per_document + revisits 1-6, icl_shots 2-8, sft_images >= 2, countries >= 4, web_text 0-8)");
    world_summary sum;
    const int S = o.image_size;
    io::write_folder(dir, [&](const fs::path& tmp) {
        detail::world_writer w(tmp, sum);
        // pairs: COYO-like captions in webdataset shards (KEY.png, KEY.txt, KEY.json)
        {
            rng g(o.seed, 1);
            std::vector<std::vector<std::pair<std::string, std::string>>> shards(std::size_t(o.shards));
            for (int i = 0; i < o.pairs; ++i) {
                const scene s = g.below(3) == 0 ? random_pair_scene(g) : random_count_scene(g);
                const std::string k = detail::key(i), cap = caption(s);
                auto& shard = shards[std::size_t(i * o.shards / o.pairs)];
                shard.push_back({k + ".png", png(draw(s, S, g))});
                shard.push_back({k + ".txt", cap});
                const nlohmann::json meta = {{"key", k}, {"caption", cap}, {"width", S}, {"height", S}, {"url", "https://synthetic.world/pair/" + k},
                                             {"clip_similarity_vitb32", 0.3}};
                shard.push_back({k + ".json", meta.dump()});
                ++sum.images;
            }
            for (std::size_t s = 0; s < shards.size(); ++s) {
                char name[32];
                std::snprintf(name, sizeof name, "pairs/%05zu.tar", s);
                w.tar(name, shards[s]);
            }
        }
        // interleaved documents: names given next to pictures, used later by the pictures' content
        {
            rng g(o.seed, 2);
            std::vector<nlohmann::json> docs;
            const char* openers[] = {"look at these pictures.", "we drew some shapes today.", "here is what we found.", "a few pictures follow."};
            const char* fillers[] = {"all of them are new.", "they are easy to tell apart.", "remember their names.", "each one has a name."};
            rng gf(o.seed, 4);  // the knowledge domain's stream: the same facts as text/knowledge.jsonl
            const auto facts = make_facts(gf, o.countries);
            // ordinary text in the proportions of the text LLM's stage-0 mixture (recipe.hpp:
            // text_icl 0.5, knowledge 0.25, descriptions 0.15, copy 0.1)
            auto web_passage = [&](rng& g) -> std::string {
                const std::uint64_t r = g.below(20);
                if (r < 10) return make_text_episode(g, o.icl_shots, o.icl_shots).text.substr(1);  // without its leading space
                if (r < 15) return fact_text(facts[std::size_t(g.below(std::uint64_t(o.countries)))], g.below(2) == 0);
                if (r < 18) return caption(g.below(3) == 0 ? random_pair_scene(g) : random_count_scene(g));
                std::string seq;
                const int n = 4 + int(g.below(7));
                for (int k = 0; k < n; ++k) seq += " " + made_up_word(g);
                return seq.substr(1) + "." + seq + ".";
            };
            for (int d = 0; d < o.documents; ++d) {
                std::vector<scene> scenes;
                std::vector<std::string> doc_names;
                std::set<std::pair<int, int>> kinds;  // (shape, colour): distinct within a document
                while (int(scenes.size()) < o.images_per_document) {
                    scene s = random_count_scene(g);
                    if (!kinds.insert({s.objects[0].shape, s.objects[0].colour}).second) continue;
                    scenes.push_back(std::move(s));
                    std::string name;
                    do name = made_up_word(g);  // distinct within the document; documents reuse words, as real ones do
                    while (std::find(doc_names.begin(), doc_names.end(), name) != doc_names.end());
                    doc_names.push_back(std::move(name));
                }
                nlohmann::json text = nlohmann::json::array(), info = nlohmann::json::array(), sim = nlohmann::json::array();
                text.push_back(openers[g.below(4)]);
                std::vector<int> matched;
                for (std::size_t j = 0; j < scenes.size(); ++j) {
                    matched.push_back(int(text.size()));
                    text.push_back(doc_names[j] + ".");
                }
                text.push_back(fillers[g.below(4)]);
                std::vector<std::size_t> order(scenes.size());
                for (std::size_t j = 0; j < order.size(); ++j) order[j] = j;
                for (std::size_t j = order.size(); j > 1; --j) std::swap(order[j - 1], order[std::size_t(g.below(j))]);
                for (std::size_t j : order) {
                    const bool many = scenes[j].objects.size() > 1;
                    text.push_back(reference(scenes[j]) + (many ? " are " : " is ") + doc_names[j] + ".");
                }
                // revisits: a new drawing of a kind named above, its name right after it (the
                // document's own in-context naming; a pair or MMC4-pair cannot predict the name)
                const std::size_t named = scenes.size();
                for (int v = 0; v < o.revisits; ++v) {
                    const std::size_t j = std::size_t(g.below(named));
                    const object& k = scenes[j].objects.front();
                    scenes.push_back(count_scene(g, k.shape, k.colour, int(g.below(2)), 1 + int(g.below(4))));
                    matched.push_back(int(text.size()));
                    text.push_back(doc_names[j] + ".");
                }
                for (int p = 0; p < o.web_text; ++p) text.push_back(web_passage(g));
                for (std::size_t j = 0; j < scenes.size(); ++j) {
                    char name[48];
                    std::snprintf(name, sizeof name, "doc%05d_%zu.png", d, j);
                    w.image(std::string("mmc4/images/") + name, draw(scenes[j], S, g));
                    const double m = 0.26 + 0.1 * g.uniform();
                    info.push_back({{"image_name", name}, {"matched_text_index", matched[j]}, {"matched_sim", m}, {"raw_url", std::string("https://synthetic.world/img/") + name}});
                    nlohmann::json row = nlohmann::json::array();
                    for (std::size_t t = 0; t < text.size(); ++t) row.push_back(int(t) == matched[j] ? m : 0.1 + 0.1 * g.uniform());
                    sim.push_back(row);
                }
                docs.push_back({{"url", "https://synthetic.world/doc/" + std::to_string(d)}, {"text_list", text}, {"image_info", info},
                                {"similarity_matrix", sim}, {"could_have_url_duplicate", 0}});
            }
            w.jsonl("mmc4/docs.jsonl", docs);
        }
        // visual instructions: questions, captions, and two-picture comparisons (LLaVA JSON list)
        {
            rng g(o.seed, 3);
            std::vector<scene> scenes;
            for (int i = 0; i < o.sft_images; ++i) {
                scenes.push_back(g.below(3) == 0 ? random_pair_scene(g) : random_count_scene(g));
                char name[32];
                std::snprintf(name, sizeof name, "sft%05d.png", i);
                w.image(std::string("llava/images/") + name, draw(scenes.back(), S, g));
            }
            auto file = [](int i) {
                char name[32];
                std::snprintf(name, sizeof name, "sft%05d.png", i);
                return std::string(name);
            };
            nlohmann::json rows = nlohmann::json::array();
            for (int r = 0; r < o.sft_rows; ++r) {
                const int i = r % o.sft_images;
                const std::string id = "sft-" + std::to_string(r);
                auto turn = [](const char* from, const std::string& v) { return nlohmann::json{{"from", from}, {"value", v}}; };
                if (r % 4 == 3) {  // two pictures: which has more shapes
                    int j = int(g.below(std::uint64_t(o.sft_images)));
                    if (j == i) j = (j + 1) % o.sft_images;
                    const auto ni = scenes[std::size_t(i)].objects.size(), nj = scenes[std::size_t(j)].objects.size();
                    const std::string a = ni == nj ? "they have the same number." : ni > nj ? "the first picture." : "the second picture.";
                    rows.push_back({{"id", id}, {"image", {file(i), file(j)}},
                                    {"conversations", {turn("human", "<image>\n<image>\nWhich picture has more shapes?"), turn("gpt", a)}}});
                } else if (r % 4 == 1) {
                    rows.push_back({{"id", id}, {"image", file(i)},
                                    {"conversations", {turn("human", "<image>\nDescribe the picture."), turn("gpt", caption(scenes[std::size_t(i)]))}}});
                } else {
                    const qa q = question(scenes[std::size_t(i)], g);
                    rows.push_back({{"id", id}, {"image", file(i)}, {"conversations", {turn("human", "<image>\n" + q.question), turn("gpt", q.answer + ".")}}});
                }
            }
            w.json("llava/sft.json", rows);
        }
        // the knowledge domain: plain text for the LLM, instructions about part of it
        std::vector<std::array<std::string, 4>> facts;  // country, capital, flag colour, animal
        {
            rng g(o.seed, 4);
            facts = make_facts(g, o.countries);
            std::vector<nlohmann::json> text, flan;
            for (int c = 0; c < o.countries; ++c) {
                text.push_back({{"text", fact_text(facts[std::size_t(c)], false)}});
                text.push_back({{"text", fact_text(facts[std::size_t(c)], true)}});
            }
            for (int c = 0; c < o.flan_countries; ++c) {
                const auto& f = facts[std::size_t(c)];
                flan.push_back({{"question", "What is the capital of " + f[0] + "?"}, {"answer", f[1] + "."}});
                flan.push_back({{"question", "What colour is the flag of " + f[0] + "?"}, {"answer", f[2] + "."}});
            }
            for (int k = 0; k < o.flan_countries / 2; ++k) {  // a few generic instructions
                const int a = int(g.below(4)), b = int(g.below(4));
                flan.push_back({{"inputs", "What is " + std::string(number_names[std::size_t(a)]) + " plus " + number_names[std::size_t(b)] + "?"},
                                {"targets", a + b <= 4 ? std::string(number_names[std::size_t(a + b)]) + "." : std::to_string(a + b) + "."}});
            }
            w.jsonl("text/knowledge.jsonl", text);
            w.jsonl("text/flan.jsonl", flan);

            // stage 0: copy sequences (a random word sequence, then the same again) and text
            // in-context episodes, the data that makes a small LLM form induction heads
            std::vector<nlohmann::json> copy, episodes;
            for (int i = 0; i < o.copy_rows; ++i) {
                std::string seq;
                const int n = 4 + int(g.below(7));
                for (int k = 0; k < n; ++k) seq += " " + made_up_word(g);
                copy.push_back({{"text", seq + "." + seq + "."}});
            }
            for (int i = 0; i < o.text_icl_rows; ++i) episodes.push_back({{"text", make_text_episode(g, o.icl_shots, o.icl_shots).text}});
            w.jsonl("text/copy.jsonl", copy);
            w.jsonl("text/icl.jsonl", episodes);
            // the world described in words, without pictures: the LLM reads how scenes are
            // talked about before any image reaches it
            rng d(o.seed, 6);
            std::vector<nlohmann::json> descriptions;
            for (int i = 0; i < o.descriptions; ++i)
                descriptions.push_back({{"text", caption(d.below(3) == 0 ? random_pair_scene(d) : random_count_scene(d))}});
            w.jsonl("text/descriptions.jsonl", descriptions);
        }
        // held-out evaluation
        {
            rng g(o.seed, 5);
            nlohmann::json vqa = nlohmann::json::array(), captions = nlohmann::json::array();
            for (int i = 0; i < o.eval_vqa; ++i) {
                const scene s = g.below(3) == 0 ? random_pair_scene(g) : random_count_scene(g);
                char name[32];
                std::snprintf(name, sizeof name, "vqa%05d.png", i);
                w.image(std::string("eval/images/") + name, draw(s, S, g));
                const qa q = question(s, g);
                vqa.push_back({{"id", "vqa-" + std::to_string(i)}, {"image", name}, {"answer", q.answer},
                               {"conversations", {{{"from", "human"}, {"value", "<image>\n" + q.question}}, {{"from", "gpt"}, {"value", q.answer + "."}}}}});
                const std::string cap = caption(s);
                captions.push_back({{"id", "caption-" + std::to_string(i)}, {"image", name}, {"answer", cap},
                                    {"conversations", {{{"from", "human"}, {"value", "<image>\nDescribe the picture."}}, {{"from", "gpt"}, {"value", cap}}}}});
            }
            w.json("eval/vqa.json", vqa);
            w.json("eval/captions.json", captions);  // the same held-out pictures, described

            // k-shot episodes: "NAME." right after each demonstration; the query's answer is
            // the name of the demonstration with the same kind of object
            std::vector<nlohmann::json> icl;
            for (int e = 0; e < o.eval_icl; ++e) {
                std::vector<scene> shots;
                std::vector<std::string> episode_names;
                std::set<std::pair<int, int>> kinds;
                while (int(shots.size()) < o.icl_shots) {
                    scene s = random_count_scene(g);
                    if (!kinds.insert({s.objects[0].shape, s.objects[0].colour}).second) continue;
                    shots.push_back(std::move(s));
                    std::string name;
                    do name = made_up_word(g);
                    while (std::find(episode_names.begin(), episode_names.end(), name) != episode_names.end());
                    episode_names.push_back(std::move(name));
                }
                const std::size_t target = std::size_t(g.below(std::uint64_t(o.icl_shots)));
                const object& t = shots[target].objects.front();
                const scene query = count_scene(g, t.shape, t.colour, int(g.below(2)), 1 + int(g.below(4)));
                nlohmann::json files = nlohmann::json::array();
                std::string prompt;
                for (std::size_t j = 0; j <= shots.size(); ++j) {
                    char name[40];
                    std::snprintf(name, sizeof name, "icl%05d_%zu.png", e, j);
                    w.image(std::string("eval/images/") + name, draw(j < shots.size() ? shots[j] : query, S, g));
                    files.push_back(name);
                    // as a rendered MMC4 document reads: "<image>\nblick. <image>\ndax. ... <image>\n"
                    prompt += j < shots.size() ? "<image>\n" + episode_names[j] + ". " : "<image>\n";
                }
                icl.push_back({{"id", "icl-" + std::to_string(e)}, {"image", files}, {"shots", o.icl_shots}, {"prompt", prompt},
                               {"answer", episode_names[target]}, {"choices", episode_names}, {"separator", ""}});
            }
            w.jsonl("eval/icl.jsonl", icl);

            // text multiple choice about countries the instructions never asked about
            std::vector<nlohmann::json> mc;
            for (int i = 0; i < o.eval_text; ++i) {
                const int c = o.flan_countries + int(g.below(std::uint64_t(o.countries - o.flan_countries > 0 ? o.countries - o.flan_countries : o.countries)));
                const auto& f = facts[std::size_t(c % o.countries)];
                const bool capital = g.below(2) == 0;
                std::vector<std::string> choices = {capital ? f[1] : f[2]};
                while (choices.size() < 4) {
                    const std::string x = capital ? facts[std::size_t(g.below(std::uint64_t(o.countries)))][1] : colour_names[g.below(6)];
                    if (std::find(choices.begin(), choices.end(), x) == choices.end()) choices.push_back(x);
                }
                const std::size_t at = std::size_t(g.below(4));
                std::swap(choices[0], choices[at]);
                mc.push_back({{"id", "text-" + std::to_string(i)},
                              {"question", capital ? "What is the capital of " + f[0] + "?" : "What colour is the flag of " + f[0] + "?"},
                              {"choices", choices}, {"answer", at}});
            }
            w.jsonl("eval/text_mc.jsonl", mc);

            // text in-context episodes: the strict test of the LLM's in-context ability
            std::vector<nlohmann::json> text_icl;
            for (int i = 0; i < o.eval_text_icl; ++i) {
                const text_episode e = make_text_episode(g, o.icl_shots, 0);
                text_icl.push_back({{"id", "text-icl-" + std::to_string(i)}, {"prompt", e.text}, {"choices", e.labels}, {"answer", e.answer},
                                    {"separator", ""}});
            }
            w.jsonl("eval/text_icl.jsonl", text_icl);
        }
        w.json("registry.json", {{"coyo", {{"format", "webdataset"}, {"path", "pairs"}, {"pack", 4}}},
                                 {"mmc4", {{"format", "mmc4"}, {"path", "mmc4/docs.jsonl"}, {"image_folder", "mmc4/images"}}},
                                 {"mmc4_pairs", {{"format", "mmc4-pairs"}, {"path", "mmc4/docs.jsonl"}, {"image_folder", "mmc4/images"}}},
                                 {"llava", {{"format", "llava"}, {"path", "llava/sft.json"}}},
                                 {"flan", {{"format", "instructions"}, {"path", "text/flan.jsonl"}}},
                                 {"knowledge", {{"format", "text"}, {"path", "text/knowledge.jsonl"}}},
                                 {"copy", {{"format", "text"}, {"path", "text/copy.jsonl"}}},
                                 {"text_icl", {{"format", "text"}, {"path", "text/icl.jsonl"}}},
                                 {"descriptions", {{"format", "text"}, {"path", "text/descriptions.jsonl"}}}});
        w.json("world.json", {{"generator", "vila::data::synthetic::write_world"}, {"seed", o.seed}, {"image_size", S},
                              {"pairs", o.pairs}, {"shards", o.shards}, {"documents", o.documents},
                              {"images_per_document", o.images_per_document}, {"revisits", o.revisits}, {"sft_images", o.sft_images}, {"sft_rows", o.sft_rows},
                              {"countries", o.countries}, {"flan_countries", o.flan_countries}, {"eval_vqa", o.eval_vqa},
                              {"eval_icl", o.eval_icl}, {"icl_shots", o.icl_shots}, {"eval_text", o.eval_text},
                              {"copy_rows", o.copy_rows}, {"text_icl_rows", o.text_icl_rows}, {"descriptions", o.descriptions},
                              {"eval_text_icl", o.eval_text_icl}, {"web_text", o.web_text}});
    }, io::existing_folder::refuse);
    return sum;
}

}  // namespace vila::data::synthetic
