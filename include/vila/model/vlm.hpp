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
#include "../projector/any.hpp"
#include "../projector/projectors.hpp"
#include "../tokenizer/tokenizer.hpp"
#include "../vision/dynamic_s2.hpp"
#include "../vision/vit.hpp"
#include "checkpoint.hpp"
#include "splice.hpp"

namespace vila {

namespace model {
/// A prompt's images as a VLM takes them: the pixels of every tile [tiles, 3, H, W] and how each
/// image was tiled (NVILA's dynamic S2; an untiled image is one tile).
struct images {
    tensor<float> pixels;
    std::vector<vision::tile_grid> grids;
    /// Each of `pixels` one untiled image.
    static images untiled(const tensor<float>& pixels) {
        images i;
        i.pixels = pixels;
        i.grids.resize(pixels.rank() == 4 ? std::size_t(pixels.dim(0)) : 0);
        return i;
    }
};
}  // namespace model

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
    vision::dynamic_s2 s2;           // NVILA's multi-scale tiling (off when s2.scales is empty)
    // Text whose token ids frame each image's features (NVILA's image encoder: end "\n"), and the ids.
    std::string image_start, image_end;
    std::vector<std::int32_t> image_start_ids, image_end_ids;

    vlm(const vision::vit_config& v, const llm::llama_config& l, std::int32_t image_token = model::image_placeholder,
        std::string aspect_ratio = "resize", vision::dynamic_s2 s2_settings = {}, std::string projector_type = projector_t::type_name)
        : vision(v),
          projector(projector::config{v.hidden_size * index_t(std::max<std::size_t>(1, s2_settings.scales.size())), l.hidden_size,
                                      std::move(projector_type)}),
          llm(l), image_token_id(image_token), image_aspect_ratio(std::move(aspect_ratio)), s2(std::move(s2_settings)) {}

    /// Sequence positions one image takes (its features and framing tokens); with dynamic S2,
    /// those of an untiled image (a tiled one takes block rows x cols times the features).
    index_t tokens_per_image() const {
        return projector.output_tokens(vision.feature_tokens()) + index_t(image_start_ids.size() + image_end_ids.size());
    }

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
    /// With dynamic S2, `pixels` holds every image's tiles and `grids` says how each image was
    /// tiled (vision::tile_image); without grids, every image is one untiled tile.
    const tensor_t& forward(const std::vector<data::sample>& samples, const tensor_t* pixels = nullptr,
                            const std::vector<vision::tile_grid>* grids = nullptr) {
        embed(samples, pixels, grids);
        return llm.forward_embeddings(embeds_, plan_.padded ? &mask_ : nullptr);
    }

    /// Only the splice: the LLM's input embeddings [B, T', D] (runs the vision tower and the
    /// projector, not the LLM). A generation prompt starts here.
    const tensor_t& embed(const std::vector<data::sample>& samples, const tensor_t* pixels = nullptr,
                          const std::vector<vision::tile_grid>* grids = nullptr) {
        const index_t tiles = pixels ? pixels->dim(0) : 0;
        grids_ = grids ? *grids : std::vector<vision::tile_grid>(std::size_t(tiles));
        if (!s2.enabled())
            for (const auto& g : grids_)
                if (g.tiled()) throw error("vila::vlm: tiled images need a model with dynamic S2 (NVILA)");
        if (grids && !s2.enabled() && index_t(grids->size()) != tiles)
            throw error("vila::vlm: " + std::to_string(grids->size()) + " tile grids for " + std::to_string(tiles) + " images");
        const index_t N = index_t(grids_.size());  // images
        const index_t g = vision.config.grid(), m = projector.output_side(g), F = projector.output_tokens(vision.feature_tokens());
        model::image_slots slots;
        slots.start = image_start_ids, slots.end = image_end_ids;
        for (const auto& grid : grids_) {
            const auto b = vision::block_grid(grid, s2);
            slots.features.push_back(s2.enabled() ? b.rows * b.cols * m * m : F);
        }
        plan_ = model::plan_splice(samples, image_token_id, slots, N, llm.config.vocab_size);
        const index_t Bn = plan_.batch, Tn = plan_.length, D = llm.config.hidden_size;
        upload(plan_.token, {Bn, Tn}, token_);
        upload(plan_.feature, {Bn, Tn}, feature_);
        upload(plan_.labels, {Bn, Tn}, labels_);
        if (plan_.padded) upload(plan_.mask, {Bn, Tn}, mask_);
        const tensor_t* rows = nullptr;  // feature rows in sequence order [rows, D]
        if (tiles > 0) {
            const auto& features = vision.forward(*pixels);  // [tiles, L, C]
            if (!s2.enabled()) {
                projector.forward(features, projected_, pcache_);  // [N, F, D]
                rows = &projected_;
            } else {
                if (features.dim(1) != g * g)
                    throw config_error("vila::vlm: dynamic S2 needs the tower's whole patch grid (select_feature cls_patch for SigLIP)");
                const index_t C = features.dim(2), S = index_t(s2.scales.size()), blocks = vision::block_count(grids_, s2);
                const auto host = features.to_host();
                std::vector<T> merged(std::size_t(blocks * g * g * S * C));
                vision::scale_merge(grids_, s2, g, C, tiles, host.data(), merged.data(), false);
                blocks_ = tensor_t::from_host({blocks, g * g, S * C}, merged);
                projector.forward(blocks_, projected_, pcache_);  // [blocks, m*m, D]
                // merge_chessboard: an image's blocks side by side, its rows read row by row
                std::vector<std::int32_t> order;
                index_t block0 = 0;
                for (const auto& grid : grids_) {
                    const auto b = vision::block_grid(grid, s2);
                    for (index_t y = 0; y < b.rows * m; ++y)
                        for (index_t x = 0; x < b.cols * m; ++x)
                            order.push_back(std::int32_t((block0 + (y / m) * b.cols + x / m) * m * m + (y % m) * m + x % m));
                    block0 += b.rows * b.cols;
                }
                upload(order, {index_t(order.size())}, order_);
                ordered_.ensure_shape({index_t(order.size()), D});
                B::parallel_for(ordered_.size(), model::detail::row_gather<T>{order_.data(), projected_.data(), ordered_.data(), D, false});
                rows = &ordered_;
            }
            upload(plan_.feature_position, {plan_.feature_rows}, feature_position_);
        }
        embeds_.ensure_shape({Bn, Tn, D});
        B::parallel_for(embeds_.size(), model::detail::splice_gather<T>{token_.data(), feature_.data(), llm.embed_tokens.weight.value.data(),
                                                                        rows ? rows->data() : nullptr, embeds_.data(), D});
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
        drows_.ensure_shape({plan_.feature_rows, D});
        B::parallel_for(drows_.size(), model::detail::row_gather<T>{feature_position_.data(), dembeds_.data(), drows_.data(), D, false});
        const tensor_t* dprojected = &drows_;
        if (s2.enabled()) {  // undo the chessboard order: a permutation of the projector's rows
            dprojected_.ensure_shape(projected_.shape());
            B::parallel_for(drows_.size(), model::detail::row_gather<T>{order_.data(), drows_.data(), dprojected_.data(), D, true});
            dprojected = &dprojected_;
        } else {
            drows_.reshape(projected_.shape());
        }
        if (!vision_trains) {
            projector.backward(pcache_, *dprojected, nullptr);
            return;
        }
        const auto& features = vision.features();
        if (!s2.enabled()) {
            dfeatures_.ensure_shape(features.shape());
            dfeatures_.zero();
            projector.backward(pcache_, *dprojected, &dfeatures_);
        } else {
            dblocks_.ensure_shape(blocks_.shape());
            dblocks_.zero();
            projector.backward(pcache_, *dprojected, &dblocks_);
            const index_t g = vision.config.grid();
            const auto dblocks = dblocks_.to_host();
            std::vector<T> dfeat(std::size_t(features.size()), T(0));
            vision::scale_merge(grids_, s2, g, features.dim(2), features.dim(0), dblocks.data(), dfeat.data(), true);
            dfeatures_ = tensor_t::from_host(features.shape(), dfeat);
        }
        vision.backward(dfeatures_);
    }

    // --- checkpoints -----------------------------------------------------------------------------

    /// Loads a VILA-layout or LLaVA-HF folder. The folder's vision and projector types must be
    /// this model type's; model::read_layout() tells which type a folder needs.
    static vlm load(const std::filesystem::path& dir) { return load(model::read_layout(dir)); }

    static vlm load(const model::layout& L) {
        if (L.vision.model_type != VisionFlavor::model_type)
            throw config_error(L.dir.string() + ": the vision tower is " + L.vision.model_type + ", this model type expects " +
                               VisionFlavor::model_type);
        if (!projector_t::accepts(L.projector_type))
            throw config_error(L.dir.string() + ": the projector is " + L.projector_type + ", this model type expects " +
                               projector_t::type_name);
        if (L.kind == model::layout::format::vila) {
            // every checkpoint opened and weighed against its config before anything is allocated
            const io::safetensors_checkpoint lck(L.llm_dir), vck(L.vision_dir), pck(L.projector_dir);
            io::check_weight_memory(L.llm.weight_count() + L.vision.weight_count(), sizeof(T), L.dir.string());
            llm_t::check_checkpoint(L.llm, lck, L.llm_dir.string());
            io::check_holds(vck, "", L.vision.weight_count(), L.vision_dir.string());
            vlm m(L.vision, L.llm, L.image_token_id, L.image_aspect_ratio, L.s2, L.projector_type);
            m.set_image_framing(L);
            m.llm.load_weights(lck, L.llm_dir.string());
            m.vision.load_weights(vck, L.vision_dir.string());
            std::set<std::string> used;
            io::read_parameters(m.projector, pck, L.projector_dir.string(), nullptr, &used);
            io::check_no_strays(pck, L.projector_dir.string(), used, "", nullptr, "for " + m.projector.type());
            return m;
        }
        {
            const io::safetensors_checkpoint ck(L.dir);
            const std::string where = L.dir.string();
            io::check_weight_memory(L.llm.weight_count() + L.vision.weight_count(), sizeof(T), where);
            llm_t::check_checkpoint(L.llm, ck, where, "language_model.");
            io::check_holds(ck, "vision_tower.", L.vision.weight_count(), where);
            vlm m(L.vision, L.llm, L.image_token_id, L.image_aspect_ratio, {}, L.projector_type);
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
        pc["mm_projector_type"] = projector.type();
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
        projector_cfg["mm_projector_type"] = projector.type();
        root["architectures"] = nlohmann::json::array();
        root["architectures"].push_back("LlavaLlamaModel");
        root["model_type"] = "llava_llama";
        root["llm_cfg"] = llm_cfg;
        root["vision_tower_cfg"] = vision_cfg;
        root["mm_projector_cfg"] = projector_cfg;
        root["hidden_size"] = lc.hidden_size;
        root["mm_hidden_size"] = vision.config.hidden_size * index_t(std::max<std::size_t>(1, s2.scales.size()));
        root["image_aspect_ratio"] = image_aspect_ratio;
        if (s2.enabled()) {
            std::string scales;
            for (auto v : s2.scales) scales += (scales.empty() ? "" : ",") + std::to_string(v);
            root["dynamic_s2"] = true;
            root["s2_scales"] = scales;
            root["max_tiles"] = s2.max_tiles;
            root["s2_resize_output_to_scale_idx"] = s2.resize_output_to;
        }
        if (!image_start.empty() || !image_end.empty()) {  // VILA's image_encoder key (a JSON string)
            nlohmann::json enc;
            enc["_target_"] = "llava.model.encoders.BasicImageEncoder";
            if (!image_start.empty()) enc["start_tokens"] = image_start;
            enc["end_tokens"] = image_end.empty() ? nlohmann::json() : nlohmann::json(image_end);
            root["image_encoder"] = enc.dump();
        }
        root["mm_vision_select_layer"] = vision.config.select_layer;
        root["mm_vision_select_feature"] = vision.config.select_feature;
        root["image_token_id"] = image_token_id;
        io::write_json(dir / "config.json", root);
    }

    /// The framing text of the layout and its token ids by the folder's tokenizer (VILA:
    /// tokenizer(text).input_ids, special tokens included).
    void set_image_framing(const model::layout& L) {
        image_start = L.image_start, image_end = L.image_end;
        image_start_ids.clear(), image_end_ids.clear();
        if (image_start.empty() && image_end.empty()) return;
        if (!tokenizer::tokenizer::present(L.tokenizer_dir()))
            throw config_error(L.dir.string() + ": the image encoder frames images with the tokens of \"" + image_start + image_end +
                               "\" but " + L.tokenizer_dir().string() + " has no tokenizer");
        const auto tok = tokenizer::load(L.tokenizer_dir());
        const auto encode = [&](const std::string& text, std::vector<std::int32_t>& ids) {
            if (text.empty()) return;
            for (auto id : tok.encode(text, true)) {
                if (id < 0 || id >= llm.config.vocab_size)
                    throw config_error(L.dir.string() + ": the image framing token " + std::to_string(id) + " is outside the LLM's vocabulary");
                ids.push_back(std::int32_t(id));
            }
        };
        encode(image_start, image_start_ids);
        encode(image_end, image_end_ids);
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
    std::vector<vision::tile_grid> grids_;
    ids_t order_;  // dynamic S2: projector row of each feature row
    tensor_t projected_, embeds_, dembeds_, dprojected_, dfeatures_, blocks_, dblocks_, ordered_, drows_;
};

namespace model {
template <class M>
struct type_tag {
    using type = M;
};
/// Calls f(type_tag<vlm<V, projector::any>>{}) with the CPU VLM type a folder's layout needs (its
/// vision tower; the projector type is chosen at run time), so that callers write their generic code once.
template <class F>
decltype(auto) visit_vlm_type(const layout& L, F&& f) {
    if (L.vision.model_type == "clip_vision_model") return f(type_tag<vlm<vision::clip, projector::any>>{});
    return f(type_tag<vlm<vision::siglip, projector::any>>{});
}
}  // namespace model

}  // namespace vila
