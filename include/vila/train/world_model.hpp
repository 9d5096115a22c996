// vila/train/world_model.hpp — a small VILA-layout model with random weights and a tokenizer
// trained on a synthetic world's text: the starting point of the recipe from scratch (nothing
// pretrained is available offline).
//
// The tokenizer reads a newline as a space, so that in the world's documents a name follows its
// picture directly: VILA's MMC4 reader writes "<image>\n" before each matched sentence, and a
// separator token between key and label kept a small LLM from learning in context (SCIENCE.md,
// rule 3; measured here too: 13% strict text ICL after stage 0 with the newline, chance 25%).
// The defaults follow what made a prototype of the experiment work (SCIENCE.md): an LLM of width
// 128 with 2 layers (induction needs two) and 4 heads, token embeddings N(0, 1); a CLIP-style
// tower that sees the world's pictures at 32 px (its image processor resizes them) in 16 px
// patches, and the 2 x 2 downsampling projector, so that each picture is one token in the LLM's
// sequence. Measured on the world (docs/recipe.md): 64 px in 32 px patches (one token) left the
// tower blind to colour and shape; 64 px in 16 px patches (four tokens per picture) saw, but
// 4-shot visual in-context naming after pre-training reached 46% against 69% with one token of
// a 32 px picture, and VQA after SFT was the same (51%).
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../data/source.hpp"
#include "../io/json.hpp"
#include "../model/init.hpp"
#include "../model/vlm.hpp"
#include "../tokenizer/bpe_trainer.hpp"
#include "../tokenizer/chat_template.hpp"
#include "checkpoint.hpp"

namespace vila::train {

using world_vlm = vlm<vision::clip, projector::mlp_downsample>;

struct world_model_options {
    std::uint64_t seed = 0;
    std::size_t vocab_size = 1024;
    index_t llm_width = 128, llm_layers = 2, llm_heads = 4, llm_mlp = 512, max_positions = 256;
    index_t vision_width = 128, vision_layers = 2, vision_heads = 4, vision_mlp = 512;
    index_t image_size = 32, patch_size = 16;  // the tower's input (pictures are resized to it)
    double embedding_std = 1.0;
    /// Rows read per training file for the tokenizer: the stage-0 files hold 10^5 rows of made-up
    /// words that would otherwise take every merge, leaving the world's English words ("green",
    /// "circles") split into letters, which made captions and answers many tokens long.
    std::size_t tokenizer_rows_per_file = 2000;
};

namespace detail {
/// Every string in a JSON value (keys excluded), for the tokenizer's training text.
inline void strings_of(const nlohmann::json& j, std::vector<std::string>& out) {
    if (j.is_string()) out.push_back(j.get<std::string>());
    else if (j.is_array() || j.is_object())
        for (const auto& v : j) strings_of(v, out);
}
}  // namespace detail

/// Writes a VILA-layout folder `out` (atomically): tokenizer (byte-level BPE trained on the
/// world's text and the chat templates' words; <s>, </s>, <unk> special), random weights, the
/// CLIP image processor for image_size. Returns the tokenizer's vocabulary size.
inline std::size_t make_world_model(const std::filesystem::path& world, const std::filesystem::path& out, const world_model_options& o = {}) {
    namespace fs = std::filesystem;
    if (!fs::exists(world / "registry.json")) throw io_error(world.string() + ": not a synthetic world (no registry.json)");
    tokenizer::bpe_trainer_options bo;
    bo.vocab_size = o.vocab_size;
    bo.special_tokens = {"<s>", "</s>", "<unk>"};
    tokenizer::bpe_trainer bpe(bo);
    for (const char* f : {"text/knowledge.jsonl", "text/flan.jsonl", "text/copy.jsonl", "text/icl.jsonl", "text/descriptions.jsonl",
                          "mmc4/docs.jsonl", "llava/sft.json"}) {
        if (!fs::exists(world / f)) continue;
        const data::json_rows rows(world / f);
        for (std::size_t i = 0; i < std::min(rows.size(), o.tokenizer_rows_per_file); ++i) {
            std::vector<std::string> texts;
            detail::strings_of(rows.row(i), texts);
            for (auto& t : texts) {
                if (t.find(".png") != std::string::npos || t.rfind("http", 0) == 0) continue;
                std::replace(t.begin(), t.end(), '\n', ' ');  // as the normalizer below will
                bpe.feed(t);
            }
        }
    }
    for (const char* conv : {"vicuna_v1", "plain"}) bpe.feed(tokenizer::render_prompt(conv, "What is it?").text);
    const auto tok_dir = out.string() + ".tokenizer-tmp";
    fs::remove_all(tok_dir);
    struct remove_on_exit {  // the scratch tokenizer folder goes, whether this returns or throws
        std::string dir;
        ~remove_on_exit() {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    } scratch{tok_dir};
    bpe.train_and_save(tok_dir);
    {  // newline reads as a space: a name then follows its picture directly ("<image>\nblick." is
       // "<image> blick."), with nothing between key and label (SCIENCE.md, rule 3)
        auto tj = io::read_json(fs::path(tok_dir) / "tokenizer.json");
        nlohmann::json norm, pattern;
        norm["type"] = "Replace";
        pattern["String"] = "\n";
        norm["pattern"] = pattern;
        norm["content"] = " ";
        tj["normalizer"] = norm;
        io::write_json(fs::path(tok_dir) / "tokenizer.json", tj);
    }
    nlohmann::json tc;
    tc["bos_token"] = "<s>";
    tc["eos_token"] = "</s>";
    tc["unk_token"] = "<unk>";
    tc["model_max_length"] = o.max_positions;
    tc["tokenizer_class"] = "PreTrainedTokenizerFast";
    io::write_json(fs::path(tok_dir) / "tokenizer_config.json", tc);
    const auto tok = tokenizer::load(tok_dir);
    const std::size_t vocab = tok.vocab_size();

    vision::vit_config vc;
    vc.model_type = "clip_vision_model";
    vc.hidden_size = o.vision_width;
    vc.intermediate_size = o.vision_mlp;
    vc.num_hidden_layers = o.vision_layers;
    vc.num_attention_heads = o.vision_heads;
    vc.image_size = o.image_size;
    vc.patch_size = o.patch_size;
    vc.hidden_act = "quick_gelu";
    vc.select_layer = -1;  // a tower trained here: its last layer is the one trained to be read
    vc.select_feature = "patch";
    llm::llama_config lc;
    lc.hidden_size = o.llm_width;
    lc.intermediate_size = o.llm_mlp;
    lc.num_hidden_layers = o.llm_layers;
    lc.num_attention_heads = lc.num_key_value_heads = o.llm_heads;
    lc.head_dim = o.llm_width / o.llm_heads;
    lc.vocab_size = index_t(vocab);
    lc.max_position_embeddings = o.max_positions;
    lc.rms_norm_eps = 1e-5;
    if (const auto eos = tok.eos_id()) lc.eos_token_ids = {index_t(*eos)};
    world_vlm m(vc, lc);
    rng gen(o.seed, 77);
    model::init_options io;
    io.embedding_std = o.embedding_std;
    model::init_weights(m, gen, io);

    io::write_folder(out, [&](const fs::path& tmp) {
        m.save_into(tmp);
        copy_tokenizer_files(tok_dir, tmp / "llm");
        nlohmann::json pc, size, crop;
        pc["image_processor_type"] = "CLIPImageProcessor";
        size["shortest_edge"] = o.image_size;
        crop["height"] = crop["width"] = o.image_size;
        pc["size"] = size;
        pc["crop_size"] = crop;
        pc["do_resize"] = pc["do_center_crop"] = pc["do_normalize"] = pc["do_rescale"] = true;
        pc["rescale_factor"] = 1.0 / 255.0;
        pc["image_mean"] = pc["image_std"] = nlohmann::json::array();  // CLIP's (no nested brace lists: nvcc)
        for (double x : {0.48145466, 0.4578275, 0.40821073}) pc["image_mean"].push_back(x);
        for (double x : {0.26862954, 0.26130258, 0.27577711}) pc["image_std"].push_back(x);
        io::write_json(tmp / "vision_tower" / "preprocessor_config.json", pc);
    });
    return vocab;
}

}  // namespace vila::train
