// vila/model/vlm.hpp — a visual language model composed at compile time:
//
//   logits = llm( splice(embed(text ids), projector(vision(pixels))) )
//
//   using model_t = vila::vlm<vila::vision::siglip, vila::projector::mlp_downsample, vila::llm::llama>;
//   auto m = model_t::load("VILA1.5-3b");       // or a LLaVA-HF folder (clip + mlp2x_gelu)
//
// Forward takes a batch of samples (token ids with image tokens, see model/splice.hpp) and all
// their images as one pixel tensor [N, 3, H, W] in order. Backward runs through all three
// parts: the LLM (when trainable), the projector, and the vision tower only when one of its
// parameters is trainable (VILA's stages 1-2 freeze it). Frozen parts get no gradient work.
// Parameter names are the VILA layout's: "llm.<HF name>", "vision_tower.<HF name>",
// "mm_projector.layers.*", so freezing and optimizers address parts by prefix.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../io/atomic_file.hpp"
#include "../io/folder.hpp"
#include "../io/json.hpp"
#include "../io/parameters.hpp"
#include "../io/safetensors.hpp"
#include "../llm/generate.hpp"
#include "../llm/llama.hpp"
#include "../nn/embedding.hpp"
#include "../projector/projectors.hpp"
#include "../vision/vit.hpp"
#include "checkpoint.hpp"
#include "splice.hpp"

namespace vila {

template <class VisionFlavor, template <class, class> class Projector, template <class, class> class LLM = llm::llama,
          class B = backend::cpu, class T = float>
class vlm {
public:
    using tensor_t = tensor<T, B>;
    using ids_t = tensor<std::int32_t, B>;
    using vision_t = vision::vit<VisionFlavor, T, B>;
    using projector_t = Projector<T, B>;
    using llm_t = LLM<T, B>;

    vision_t vision;
    projector_t projector;
    llm_t llm;
    std::int32_t image_token_id;     // the id standing for an image in token sequences
    std::string image_aspect_ratio;  // VILA's preprocessing mode, kept for save()

    vlm(const vision::vit_config& v, const llm::llama_config& l, std::int32_t image_token = model::image_placeholder,
        std::string aspect_ratio = "resize")
        : vision(v), projector(projector::config{v.hidden_size, l.hidden_size}), llm(l), image_token_id(image_token),
          image_aspect_ratio(std::move(aspect_ratio)) {}

    /// Features each image contributes to the sequence.
    index_t tokens_per_image() const { return projector_t::output_tokens(vision.feature_tokens()); }

    // --- parameters ------------------------------------------------------------------------------

    template <class Fn>
    void for_each_parameter(Fn&& f) {
        vision.for_each_parameter([&](const std::string& n, param<T, B>& p) { f("vision_tower." + n, p); });
        projector.for_each_parameter([&](const std::string& n, param<T, B>& p) { f("mm_projector." + n, p); });
        llm.for_each_parameter([&](const std::string& n, param<T, B>& p) { f("llm." + n, p); });
    }
    /// The linear layers LoRA may target: the LLM's (VILA and LLaVA leave the vision tower and
    /// the projector out of LoRA; the projector trains in full when the freezing policy says so).
    template <class Fn>
    void for_each_linear(Fn&& f) {
        llm.for_each_linear(f);
    }
    static std::string peft_module_prefix() { return "llm."; }
    /// Freezes (or unfreezes) every parameter whose name starts with `prefix` ("vision_tower.",
    /// "mm_projector.", "llm.", or any finer prefix). Returns how many parameters it touched.
    index_t set_trainable(const std::string& prefix, bool on) {
        index_t n = 0;
        for_each_parameter([&](const std::string& name, param<T, B>& p) {
            if (name.rfind(prefix, 0) == 0) p.set_trainable(on), ++n;
        });
        return n;
    }
    void zero_grad() {
        for_each_parameter([](const std::string&, param<T, B>& p) { p.zero_grad(); });
    }

    // --- forward / backward ----------------------------------------------------------------------

    /// Logits [B, T', V] of the spliced batch. `pixels`: every sample's images in order,
    /// [N, C, H, W] (nullptr or N = 0 for text-only batches).
    const tensor_t& forward(const std::vector<data::sample>& samples, const tensor_t* pixels = nullptr) {
        embed(samples, pixels);
        return llm.forward_embeddings(embeds_, plan_.padded ? &mask_ : nullptr);
    }

    /// Only the splice: the LLM's input embeddings [B, T', D] (runs the vision tower and the
    /// projector, not the LLM). A generation prompt starts here.
    const tensor_t& embed(const std::vector<data::sample>& samples, const tensor_t* pixels = nullptr) {
        const index_t N = pixels ? pixels->dim(0) : 0;
        plan_ = model::plan_splice(samples, image_token_id, tokens_per_image(), N, llm.config.vocab_size);
        const index_t Bn = plan_.batch, Tn = plan_.length, D = llm.config.hidden_size;
        upload(plan_.token, {Bn, Tn}, token_);
        upload(plan_.feature, {Bn, Tn}, feature_);
        upload(plan_.labels, {Bn, Tn}, labels_);
        if (plan_.padded) upload(plan_.mask, {Bn, Tn}, mask_);
        if (N > 0) {
            const auto& features = vision.forward(*pixels);  // [N, L, C]
            projector.forward(features, projected_, pcache_);  // [N, F, D]
            upload(plan_.feature_position, {N * plan_.features_per_image}, feature_position_);
        }
        embeds_.ensure_shape({Bn, Tn, D});
        B::parallel_for(embeds_.size(), model::detail::splice_gather<T>{token_.data(), feature_.data(), llm.embed_tokens.weight.value.data(),
                                                                        N > 0 ? projected_.data() : nullptr, embeds_.data(), D});
        return embeds_;
    }

    /// The spliced input embeddings [B, T', D] of the last forward (a generation prompt).
    const tensor_t& input_embeddings() const noexcept { return embeds_; }
    const model::splice_plan& plan() const noexcept { return plan_; }
    const tensor_t& logits() const { return llm.logits(); }

    /// Next-token cross-entropy of the last forward over text positions (labels from the samples;
    /// image and padding positions ignored).
    nn::cross_entropy_result<T> loss() { return llm.loss(labels_); }

    /// Backward of the last loss() with d loss = scale: gradients reach the LLM, the projector
    /// and, when trainable, the vision tower.
    void backward_loss(double scale = 1.0) {
        const index_t D = llm.config.hidden_size;
        dembeds_.ensure_shape(embeds_.shape());
        dembeds_.zero();
        llm.backward_loss(scale, &dembeds_);
        auto& E = llm.embed_tokens.weight;
        if (E.trainable) nn::embedding_backward(token_, dembeds_, E.grad);  // text positions; image and padding ids are -1
        if (plan_.images == 0) return;
        const bool vision_trains = any_trainable(vision);
        if (!vision_trains && !any_trainable(projector)) return;
        dprojected_.ensure_shape(projected_.shape());
        B::parallel_for(dprojected_.size(), model::detail::splice_feature_grad<T>{feature_position_.data(), dembeds_.data(), dprojected_.data(), D});
        if (vision_trains) {
            dfeatures_.ensure_shape(vision.features().shape());
            dfeatures_.zero();
            projector.backward(pcache_, dprojected_, &dfeatures_);
            vision.backward(dfeatures_);
        } else {
            projector.backward(pcache_, dprojected_, nullptr);
        }
    }

    // --- checkpoints -----------------------------------------------------------------------------

    /// Loads a VILA-layout or LLaVA-HF folder. The folder's vision and projector types must be
    /// this model type's; model::read_layout() tells which type a folder needs.
    static vlm load(const std::filesystem::path& dir) { return load(model::read_layout(dir)); }

    static vlm load(const model::layout& L) {
        if (L.vision.model_type != VisionFlavor::model_type)
            throw config_error(L.dir.string() + ": the vision tower is " + L.vision.model_type + ", this model type expects " +
                               VisionFlavor::model_type);
        if (L.projector_type != projector_t::type_name)
            throw config_error(L.dir.string() + ": the projector is " + L.projector_type + ", this model type expects " +
                               projector_t::type_name);
        if (L.kind == model::layout::format::vila) {
            // every checkpoint opened and weighed against its config before anything is allocated
            const io::safetensors_checkpoint lck(L.llm_dir), vck(L.vision_dir), pck(L.projector_dir);
            io::check_weight_memory(L.llm.weight_count() + L.vision.weight_count(), sizeof(T), L.dir.string());
            llm_t::check_checkpoint(L.llm, lck, L.llm_dir.string());
            io::check_holds(vck, "", L.vision.weight_count(), L.vision_dir.string());
            vlm m(L.vision, L.llm, L.image_token_id, L.image_aspect_ratio);
            m.llm.load_weights(lck, L.llm_dir.string());
            m.vision.load_weights(vck, L.vision_dir.string());
            std::set<std::string> used;
            io::read_parameters(m.projector, pck, L.projector_dir.string(), nullptr, &used);
            io::check_no_strays(pck, L.projector_dir.string(), used, "", nullptr, std::string("for ") + projector_t::type_name);
            return m;
        }
        {
            const io::safetensors_checkpoint ck(L.dir);
            const std::string where = L.dir.string();
            io::check_weight_memory(L.llm.weight_count() + L.vision.weight_count(), sizeof(T), where);
            llm_t::check_checkpoint(L.llm, ck, where, "language_model.");
            io::check_holds(ck, "vision_tower.", L.vision.weight_count(), where);
            vlm m(L.vision, L.llm, L.image_token_id, L.image_aspect_ratio);
            m.llm.load_weights(ck, where, "language_model.");
            m.vision.load_weights(ck, where, "vision_tower.");
            std::set<std::string> used;
            // LLaVA-HF's projector is linear_1, GELU, linear_2: VILA's mlp2x_gelu layers.0 / layers.2.
            io::read_parameters(m.projector, ck, where, [](const std::string& n) {
                return "multi_modal_projector." + (n.rfind("layers.0.", 0) == 0 ? "linear_1." + n.substr(9) : "linear_2." + n.substr(9));
            }, &used);
            for (const auto& n : ck.names())
                if (n.rfind("multi_modal_projector.", 0) == 0 && !used.count(n)) throw format_error(where + ": unexpected tensor '" + n + "'");
                else if (n.rfind("multi_modal_projector.", 0) != 0 && n.rfind("language_model.", 0) != 0 && n.rfind("vision_tower.", 0) != 0)
                    throw format_error(where + ": unexpected tensor '" + n + "' (not language_model.*, vision_tower.* or multi_modal_projector.*)");
            return m;
        }
    }

    /// Writes the VILA layout (config.json, llm/, vision_tower/, mm_projector/) as a unit: after
    /// a crash `dir` is the old folder or the new one, whole (io::write_folder). It replaces
    /// everything in `dir`: to add tokenizer and preprocessor files, compose with save_into.
    void save(const std::filesystem::path& dir, io::dtype type = io::dtype::f32) {
        io::write_folder(dir, [&](const std::filesystem::path& tmp) { save_into(tmp, type); });
    }
    /// Writes the VILA layout into the existing folder `dir` (each file atomically, the folder
    /// not): the piece to call inside io::write_folder.
    void save_into(const std::filesystem::path& dir, io::dtype type = io::dtype::f32) {
        namespace fs = std::filesystem;
        for (const char* sub : {"llm", "vision_tower", "mm_projector"}) fs::create_directories(dir / sub);
        llm.save_into(dir / "llm", type);
        std::map<std::string, io::tensor_to_write> v, p;
        io::collect_parameters(vision, v);
        io::collect_parameters(projector, p);
        io::save_safetensors(dir / "vision_tower" / "model.safetensors", v, {{"format", "pt"}}, type);
        io::save_safetensors(dir / "mm_projector" / "model.safetensors", p, {{"format", "pt"}}, type);
        // (JSON built key by key: nvcc cannot parse nested brace-initialised json arguments)
        const nlohmann::json vc = vision.config.to_json();
        io::write_json(dir / "vision_tower" / "config.json", vc);
        nlohmann::json pc;
        pc["architectures"] = nlohmann::json::array();
        pc["architectures"].push_back("MultimodalProjector");
        pc["mm_projector_type"] = projector_t::type_name;
        pc["model_type"] = "v2l_projector";
        io::write_json(dir / "mm_projector" / "config.json", pc);
        nlohmann::json root, llm_cfg, vision_cfg, projector_cfg;
        llm_cfg["_name_or_path"] = "./llm";
        const llm::llama_config& lc = this->llm.config;
        llm_cfg["architectures"] = nlohmann::json::array();
        llm_cfg["architectures"].push_back(lc.architecture);
        vision_cfg["_name_or_path"] = "./vision_tower";
        vision_cfg["architectures"] = vc["architectures"];
        projector_cfg["_name_or_path"] = "./mm_projector";
        projector_cfg["mm_projector_type"] = projector_t::type_name;
        root["architectures"] = nlohmann::json::array();
        root["architectures"].push_back("LlavaLlamaModel");
        root["model_type"] = "llava_llama";
        root["llm_cfg"] = llm_cfg;
        root["vision_tower_cfg"] = vision_cfg;
        root["mm_projector_cfg"] = projector_cfg;
        root["hidden_size"] = lc.hidden_size;
        root["mm_hidden_size"] = vision.config.hidden_size;
        root["image_aspect_ratio"] = image_aspect_ratio;
        root["mm_vision_select_layer"] = vision.config.select_layer;
        root["mm_vision_select_feature"] = vision.config.select_feature;
        root["image_token_id"] = image_token_id;
        io::write_json(dir / "config.json", root);
    }

private:
    template <class M>
    static bool any_trainable(M& m) {
        bool found = false;
        m.for_each_parameter([&](const std::string&, param<T, B>& p) { found = found || p.trainable; });
        return found;
    }
    static void upload(const std::vector<std::int32_t>& host, shape_t shape, ids_t& out) { out = ids_t::from_host(std::move(shape), host); }

    model::splice_plan plan_;
    ids_t token_, feature_, labels_, mask_, feature_position_;
    typename projector_t::cache pcache_;
    tensor_t projected_, embeds_, dembeds_, dprojected_, dfeatures_;
};

namespace model {
template <class M>
struct type_tag {
    using type = M;
};
/// Calls f(type_tag<vlm<V, P>>{}) with the CPU VLM type a folder's layout needs (its vision
/// tower and projector), so that callers write their generic code once.
template <class F>
decltype(auto) visit_vlm_type(const layout& L, F&& f) {
    auto with = [&](auto vision_tag) -> decltype(auto) {
        using V = decltype(vision_tag);
        if (L.projector_type == "linear") return f(type_tag<vlm<V, projector::linear>>{});
        if (L.projector_type == "mlp2x_gelu") return f(type_tag<vlm<V, projector::mlp2x_gelu>>{});
        return f(type_tag<vlm<V, projector::mlp_downsample>>{});
    };
    if (L.vision.model_type == "clip_vision_model") return with(vision::clip{});
    return with(vision::siglip{});
}
}  // namespace model

}  // namespace vila
