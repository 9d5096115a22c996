// vila/model/checkpoint.hpp — the folder layouts a VLM is stored in.
//
//   VILA 1.5   config.json ("LlavaLlamaModel": mm_vision_select_layer/feature, image_aspect_ratio)
//              llm/ (HF LLaMA folder + tokenizer), vision_tower/ (CLIP or SigLIP vision model +
//              preprocessor_config.json), mm_projector/ (config.json {mm_projector_type},
//              model.safetensors with layers.* names). Image placeholder: token id -200.
//   LLaVA-HF   config.json ("LlavaForConditionalGeneration": text_config, vision_config,
//              image_token_index, vision_feature_layer/_select_strategy), one checkpoint with
//              language_model.*, vision_tower.[vision_model.]*, multi_modal_projector.linear_{1,2}.*
//              (an mlp2x_gelu), tokenizer and preprocessor_config.json beside it.
// read_layout() says which, with every sub-config parsed, before any weight is read, so a
// caller (the CLI, vila::assistant) can pick the matching compiled model type.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../llm/config.hpp"
#include "../vision/image.hpp"
#include "../vision/vit.hpp"

namespace vila::model {

/// VILA 1.5's image placeholder id (IMAGE_TOKEN_INDEX in its code): never a vocabulary entry.
inline constexpr std::int32_t image_placeholder = -200;

struct layout {
    enum class format { vila, llava } kind = format::vila;
    std::filesystem::path dir, llm_dir, vision_dir, projector_dir;  // llava: all = dir
    vision::vit_config vision;       // select_layer / select_feature applied
    llm::llama_config llm;
    std::string projector_type;      // linear | mlp2x_gelu | mlp_downsample
    std::string image_aspect_ratio = "resize";  // VILA layout: pad | resize; LLaVA-HF: none
    std::int32_t image_token_id = image_placeholder;
    index_t mm_hidden_size = 0;
    nlohmann::json root;             // the top config.json as read

    /// Where tokenizer.json and preprocessor_config.json live.
    std::filesystem::path tokenizer_dir() const { return llm_dir; }
    std::filesystem::path preprocessor_file() const { return vision_dir / "preprocessor_config.json"; }
};

/// Reads a model folder's configs (VILA or LLaVA-HF layout); throws config_error naming the file.
inline layout read_layout(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) throw io_error(dir.string() + ": not a model folder");
    const fs::path cfg = dir / "config.json";
    layout L;
    L.dir = dir;
    L.root = io::read_json(cfg);
    const auto& j = L.root;
    const std::string file = cfg.string();
    const io::config_fields f(j, file);
    auto fail = [&](const std::string& key, const std::string& why) { f.fail(key, why); };
    const std::string model_type = f.str("model_type", "");
    if (model_type == "llava") {
        L.kind = layout::format::llava;
        L.llm_dir = L.vision_dir = L.projector_dir = dir;
        if (!j.contains("text_config") || !j.contains("vision_config")) fail("text_config", "a llava config needs text_config and vision_config");
        L.llm = llm::llama_config::from_json(j["text_config"], file + " (text_config)");
        L.vision = vision::vit_config::from_json(j["vision_config"], file + " (vision_config)");
        if (L.vision.model_type != "clip_vision_model" && L.vision.model_type != "siglip_vision_model") fail("vision_config", "unsupported");
        if (f.has("vision_feature_layer") && f.raw("vision_feature_layer").is_array())
            fail("vision_feature_layer", "several feature layers are not supported");
        L.vision.select_layer = int(f.integer("vision_feature_layer", -2, -1024, 1024));
        const std::string strategy = f.str("vision_feature_select_strategy", "default");
        if (strategy == "default") L.vision.select_feature = "patch";
        else if (strategy == "full") L.vision.select_feature = "cls_patch";
        else fail("vision_feature_select_strategy", "'" + strategy + "' is not supported (default, full)");
        if (f.str("projector_hidden_act", "gelu") != "gelu") fail("projector_hidden_act", "only gelu is supported");
        if (!f.boolean("multimodal_projector_bias", true)) fail("multimodal_projector_bias", "a projector without biases is not supported");
        L.image_token_id = std::int32_t(f.has("image_token_index") ? f.integer("image_token_index", 0, 0, INT32_MAX)
                                                                   : f.integer("image_token_id", 32000, 0, INT32_MAX));
        L.projector_type = "mlp2x_gelu";
        L.image_aspect_ratio = "none";  // transformers' LlavaProcessor: the image processor alone
        L.mm_hidden_size = L.vision.hidden_size;
        if (L.image_token_id < 0 || L.image_token_id >= L.llm.vocab_size) fail("image_token_index", "outside the vocabulary");
        return L;
    }
    if (model_type != "llava_llama" && !(j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
                                         j["architectures"][0] == "LlavaLlamaModel"))
        fail("model_type", "'" + model_type + "' is neither a VILA (llava_llama) nor a LLaVA-HF (llava) model");
    L.kind = layout::format::vila;
    L.llm_dir = dir / "llm";
    L.vision_dir = dir / "vision_tower";
    L.projector_dir = dir / "mm_projector";
    for (const auto& d : {L.llm_dir, L.vision_dir, L.projector_dir})
        if (!fs::is_directory(d)) throw io_error(dir.string() + ": missing the " + d.filename().string() + "/ folder of the VILA layout");
    L.llm = llm::llama_config::load(L.llm_dir);
    L.vision = vision::vit_config::load(L.vision_dir);
    L.vision.select_layer = int(f.integer("mm_vision_select_layer", L.vision.select_layer, -1024, 1024));
    L.vision.select_feature = f.str("mm_vision_select_feature", "patch");
    if (L.vision.select_feature != "patch" && L.vision.select_feature != "cls_patch")
        fail("mm_vision_select_feature", "'" + L.vision.select_feature + "' is not supported (patch, cls_patch)");
    // vila.hpp's saves of LLaVA models keep theirs
    L.image_token_id = std::int32_t(f.integer("image_token_id", image_placeholder, image_placeholder, INT32_MAX));
    L.image_aspect_ratio = f.str("image_aspect_ratio", "resize");
    if (L.image_aspect_ratio != "pad" && L.image_aspect_ratio != "resize" && L.image_aspect_ratio != "none")
        fail("image_aspect_ratio", "'" + L.image_aspect_ratio + "' is not supported (pad, resize, none)");
    const auto pj = io::read_json(L.projector_dir / "config.json");
    L.projector_type = io::config_fields(pj, (L.projector_dir / "config.json").string()).str("mm_projector_type", "");
    if (L.projector_type != "linear" && L.projector_type != "mlp2x_gelu" && L.projector_type != "mlp_downsample")
        throw config_error((L.projector_dir / "config.json").string() + ": mm_projector_type: '" + L.projector_type +
                           "' is not supported (linear, mlp2x_gelu, mlp_downsample)");
    L.mm_hidden_size = L.vision.hidden_size;
    if (j.contains("mm_hidden_size") && j["mm_hidden_size"] != L.mm_hidden_size)
        fail("mm_hidden_size", "is " + j["mm_hidden_size"].dump() + " but vision_tower/config.json has hidden_size " +
                                   std::to_string(L.mm_hidden_size));
    if (j.contains("hidden_size") && j["hidden_size"] != L.llm.hidden_size)
        fail("hidden_size", "is " + j["hidden_size"].dump() + " but llm/config.json has " + std::to_string(L.llm.hidden_size));
    return L;
}

/// A model folder's image processor: its preprocessor_config.json, or the vision family's
/// defaults at the tower's resolution; VILA's image_aspect_ratio applied.
inline vision::image_processor load_image_processor(const layout& L) {
    vision::image_processor p;
    const bool clip = L.vision.model_type == "clip_vision_model";
    if (std::filesystem::exists(L.preprocessor_file())) {
        p = vision::image_processor::from_json(io::read_json(L.preprocessor_file()), L.preprocessor_file().string());
    } else {
        // (built key by key: nvcc cannot parse nested brace-initialised json)
        nlohmann::json j, size, crop;
        j["image_processor_type"] = clip ? "CLIPImageProcessor" : "SiglipImageProcessor";
        const index_t px = L.vision.image_size;
        crop["height"] = crop["width"] = px;
        if (clip) {
            size["shortest_edge"] = px;
            j["crop_size"] = crop;
        } else {
            size = crop;
        }
        j["size"] = size;
        p = vision::image_processor::from_json(j, L.vision_dir.string() + " (defaults)");
    }
    p.aspect_ratio = L.image_aspect_ratio;
    return p;
}

}  // namespace vila::model
