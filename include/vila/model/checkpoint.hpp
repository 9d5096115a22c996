// vila/model/checkpoint.hpp — the folder layouts a VLM is stored in.
//
//   VILA 1.5   config.json ("LlavaLlamaModel": mm_vision_select_layer/feature, image_aspect_ratio)
//              llm/ (HF LLaMA folder + tokenizer), vision_tower/ (CLIP or SigLIP vision model +
//              preprocessor_config.json), mm_projector/ (config.json {mm_projector_type},
//              model.safetensors with layers.* names). Image placeholder: token id -200.
//   NVILA      the same layout; config.json adds dynamic_s2 (s2_scales, max_tiles,
//              s2_resize_output_to_scale_idx: vision/dynamic_s2.hpp) and the image encoder, whose
//              end_tokens ("\n" unless config.json's image_encoder says otherwise) follow each image.
//   LLaVA-HF   config.json ("LlavaForConditionalGeneration": text_config, vision_config,
//              image_token_index, vision_feature_layer/_select_strategy), one checkpoint with
//              language_model.*, vision_tower.[vision_model.]*, multi_modal_projector.linear_{1,2}.*
//              (an mlp2x_gelu), tokenizer and preprocessor_config.json beside it.
// read_layout() says which, with every sub-config parsed, before any weight is read, so a
// caller (the CLI, vila::assistant) can pick the matching compiled model type.
#pragma once
#include <algorithm>
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
#include "../projector/any.hpp"
#include "../vision/dynamic_s2.hpp"
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
    std::string projector_type;      // linear | mlp2x_gelu | mlp_downsample | mlp_downsample_{2x2_fix,3x3_fix,3x3_s2,3x3_s2_new}
    std::string image_aspect_ratio = "resize";  // VILA layout: pad | resize | dynamic_s2; LLaVA-HF: none
    vision::dynamic_s2 s2;           // NVILA's tiling (enabled when dynamic_s2 is true)
    std::string image_start, image_end;  // text whose tokens frame each image's features (NVILA: end "\n")
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
    if (L.image_aspect_ratio != "pad" && L.image_aspect_ratio != "resize" && L.image_aspect_ratio != "none" &&
        L.image_aspect_ratio != "dynamic_s2")
        fail("image_aspect_ratio", "'" + L.image_aspect_ratio + "' is not supported (pad, resize, dynamic_s2, none)");
    const auto pj = io::read_json(L.projector_dir / "config.json");
    L.projector_type = io::config_fields(pj, (L.projector_dir / "config.json").string()).str("mm_projector_type", "");
    if (!projector::any<float>::accepts(L.projector_type))  // the projector types vila.hpp runs
        throw config_error((L.projector_dir / "config.json").string() + ": mm_projector_type: '" + L.projector_type + "' is not supported (" +
                           projector::any<float>::names() + ")");
    if (f.boolean("s2", false)) fail("s2", "the static S2 vision tower (s2wrapper) is not supported; dynamic_s2 is");
    if (f.boolean("ps3", false)) fail("ps3", "PS3 vision towers are not supported");
    if (const auto res = f.integer("vision_resolution", -1, -1, 65536); res != -1 && res != L.vision.image_size)
        fail("vision_resolution", "resizing the tower's position embeddings is not supported");
    const bool dynamic = f.boolean("dynamic_s2", false);
    if (dynamic != (L.image_aspect_ratio == "dynamic_s2"))
        fail(dynamic ? "image_aspect_ratio" : "dynamic_s2", "dynamic_s2 and image_aspect_ratio \"dynamic_s2\" go together (VILA tiles only with both)");
    if (dynamic) {
        if (L.vision.model_type != "siglip_vision_model") fail("dynamic_s2", "VILA builds dynamic S2 on SigLIP towers only");
        if (!f.has("s2_scales")) fail("s2_scales", "missing (dynamic_s2 needs it)");
        const auto& sc = f.raw("s2_scales");
        auto add = [&](std::int64_t v) {
            if (v <= 0 || v > 65536) fail("s2_scales", "scale " + std::to_string(v) + " outside [1, 65536]");
            L.s2.scales.push_back(index_t(v));
        };
        if (sc.is_string()) {  // VILA writes "448,896,1344"
            const std::string text = sc.get<std::string>();
            std::size_t at = 0;
            while (at <= text.size()) {
                const std::size_t comma = std::min(text.find(',', at), text.size());
                std::string item = text.substr(at, comma - at);
                item.erase(0, item.find_first_not_of(' '));
                item.erase(item.find_last_not_of(' ') + 1);
                if (item.empty() || item.size() > 6 || item.find_first_not_of("0123456789") != std::string::npos)
                    fail("s2_scales", "'" + text + "' is not a comma-separated list of sizes");
                add(std::stoll(item));
                at = comma + 1;
            }
        } else if (sc.is_array()) {
            for (const auto& v : sc) add(f.integer_value("s2_scales", v, 1, 65536));
        } else {
            fail("s2_scales", "expected \"448,896,1344\" or a list of sizes");
        }
        std::sort(L.s2.scales.begin(), L.s2.scales.end());  // VILA sorts them
        L.s2.max_tiles = index_t(f.integer("max_tiles", 12, 1, 1024));
        L.s2.resize_output_to = index_t(f.integer("s2_resize_output_to_scale_idx", 0, -64, 64));
        L.s2.validate(file);
        if (L.s2.tile() != L.vision.image_size)
            fail("s2_scales", "the first scale, " + std::to_string(L.s2.tile()) + ", must be the vision tower's image_size (" +
                                  std::to_string(L.vision.image_size) + ")");
    }
    // The image encoder of VILA's NVILA-era code frames each image with tokens (BasicImageEncoder:
    // end_tokens "\n" by default); VILA 1.5's code had none. A config without an image_encoder
    // key is the NVILA era's when it uses an NVILA feature (dynamic S2, an NVILA projector).
    const bool nvila_era = dynamic || (L.projector_type != "linear" && L.projector_type != "mlp2x_gelu" && L.projector_type != "mlp_downsample");
    if (f.has("image_encoder")) {
        nlohmann::json enc = f.raw("image_encoder");
        if (enc.is_string()) {
            enc = nlohmann::json::parse(enc.get<std::string>(), nullptr, false);
            if (enc.is_discarded()) fail("image_encoder", "not valid JSON");
        }
        const io::config_fields e(enc, file, "image_encoder.");
        const std::string target = e.str("_target_", "");
        if (target != "llava.model.encoders.BasicImageEncoder")
            e.fail("_target_", "'" + target + "' is not supported (llava.model.encoders.BasicImageEncoder)");
        L.image_start = e.str("start_tokens", "");
        L.image_end = enc.contains("end_tokens") ? e.str("end_tokens", "") : "\n";
    } else if (nvila_era) {
        L.image_end = "\n";
    }
    L.mm_hidden_size = L.vision.hidden_size * (dynamic ? index_t(L.s2.scales.size()) : 1);
    if (j.contains("mm_hidden_size") && j["mm_hidden_size"] != L.mm_hidden_size)
        fail("mm_hidden_size", "is " + j["mm_hidden_size"].dump() + " but vision_tower/config.json has hidden_size " +
                                   std::to_string(L.vision.hidden_size) + (dynamic ? " x " + std::to_string(L.s2.scales.size()) + " scales" : ""));
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
    if (L.s2.enabled()) {  // VILA: the processor's size becomes the tile side; tiles are cut before it runs
        p.height = p.width = L.s2.tile();
        p.aspect_ratio = "none";
    } else {
        p.aspect_ratio = L.image_aspect_ratio;
    }
    return p;
}

}  // namespace vila::model
