// vila/eval/world.hpp — one model folder scored on a synthetic world's held-out sets (the demo's
// table after each stage, and the reproduction's tables): the same tasks `vila eval` runs, with
// the world's files and templates.
//
//   auto r = vila::eval::on_world("run/06-sft/final", "world");   // {"vqa": 0.51, "icl4": ..., ...}
//
// Keys (all in [0, 1] except CIDEr / BLEU-4):
//   vqa              0-shot VQA accuracy after the vicuna_v1 template (eval/vqa.json)
//   cider, bleu4     captions of new pictures (eval/captions.json)
//   icl4             4-shot visual in-context naming: choice among the episode's 4 labels (eval/icl.jsonl)
//   text_icl_strict  text in-context episodes, greedy over the whole vocabulary (eval/text_icl.jsonl)
//   text_icl         the same episodes by choice
//   text_mc          facts the instructions never asked, multiple choice (eval/text_mc.jsonl)
#pragma once
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "../model/checkpoint.hpp"
#include "../model/vlm.hpp"
#include "../tokenizer/tokenizer.hpp"
#include "sets.hpp"
#include "tasks.hpp"

namespace vila::eval {

struct world_eval_options {
    std::size_t limit = 0;     // items per set (0: all)
    bool captions = true;      // the slowest set (16 generated tokens a picture)
};

// A template only so that a translation unit that includes this header without calling it does
// not compile the VLM types it can load (every tower x projector, with generation: ~10 s per
// test file).
template <class Options = world_eval_options>
nlohmann::json on_world(const std::filesystem::path& model_dir, const std::filesystem::path& world, const Options& o = {}) {
    static_assert(std::is_same_v<Options, world_eval_options>, "vila::eval::on_world takes a world_eval_options");
    const auto L = model::read_layout(model_dir);
    const auto tok = tokenizer::load(L.tokenizer_dir());
    const auto proc = model::load_image_processor(L);
    const std::filesystem::path sets = world / "eval";
    return model::visit_vlm_type(L, [&](auto tag) {
        auto m = decltype(tag)::type::load(L);
        auto cut = [&](auto v) {
            if (o.limit && v.size() > o.limit) v.resize(o.limit);
            return v;
        };
        nlohmann::json r;
        r["vqa"] = vqa(m, tok, cut(read_vqa(sets / "vqa.json")), m.image_token_id, "vicuna_v1", &proc, 8).accuracy;
        if (o.captions) {
            const auto cap = caption(m, tok, cut(read_vqa(sets / "captions.json")), m.image_token_id, "vicuna_v1", &proc, 16);
            r["cider"] = cap.cider;
            r["bleu4"] = cap.bleu4;
        }
        r["icl4"] = choice(m, tok, cut(read_choices(sets / "icl.jsonl", "none")), m.image_token_id, &proc).accuracy;
        const auto text_icl = cut(read_choices(sets / "text_icl.jsonl", "none"));
        r["text_icl_strict"] = exact(m, tok, text_icl, m.image_token_id, &proc, 6).accuracy;
        r["text_icl"] = choice(m, tok, text_icl, m.image_token_id, &proc).accuracy;
        r["text_mc"] = choice(m, tok, cut(read_choices(sets / "text_mc.jsonl", "vicuna_v1")), m.image_token_id, &proc).accuracy;
        return r;
    });
}

}  // namespace vila::eval
