// vila/model/assistant.hpp — the embedding facade: load a model folder, ask about images,
// stream the answer. For applications that want a VLM, not its parts.
//
//   #include <vila/model/assistant.hpp>
//   auto a = vila::assistant::load("VILA1.5-3b");            // VILA layout or LLaVA-HF folder
//   vila::ask_options o;  o.conv = "vicuna_v1";  o.max_new_tokens = 128;
//   std::string answer = a.ask({"cat.jpg"}, "<image>\nWhat is in the picture?", o,
//                              [](const std::string& piece) { std::cout << piece << std::flush; return true; });
//
// The folder decides the model type at run time: the facade holds a CLIP or SigLIP composition
// with projector::any (whichever projector the folder names) and the LLaMA-family decoder on the
// CPU backend. Researchers who know their type use vila::vlm directly.
// NVILA folders (dynamic S2): a prompt with one image gets that image's multi-scale tiles, as
// VILA's generate_content does; several images are one tile each.
// "<image>" in the prompt marks where each image goes; a prompt without one gets "<image>\n"
// per image in front, as VILA's run script does.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "../tokenizer/chat_template.hpp"
#include "lora.hpp"
#include "../tokenizer/stream_decoder.hpp"
#include "../tokenizer/tokenizer.hpp"
#include "../vision/image.hpp"
#include "vlm.hpp"

namespace vila {

struct ask_options : llm::generate_options {
    std::string conv = "none";  // conversation template: none, vicuna_v1, llama_3, hermes-2, plain, auto
};


class assistant {
public:
    /// Loads configs, weights, the tokenizer (tokenizer.json or tokenizer.model, when present) and the image processor.
    static assistant load(const std::filesystem::path& dir) {
        assistant a;
        a.layout_ = model::read_layout(dir);
        const auto& L = a.layout_;
        a.model_ = std::make_unique<any_model>(model::visit_vlm_type(L, [&](auto tag) { return any_model(decltype(tag)::type::load(L)); }));
        if (vila::tokenizer::tokenizer::present(L.tokenizer_dir())) a.tok_ = vila::tokenizer::load(L.tokenizer_dir());
        if (std::filesystem::exists(dir / "adapter_config.json"))  // a LoRA fine-tune (vila train --lora): its adapter on the LLM
            a.adapter_layers_ = std::visit([&](auto& m) { lora::load_peft(m, dir); return lora::count(m); }, *a.model_);
        a.processor_ = model::load_image_processor(L);
        return a;
    }

    const model::layout& layout() const noexcept { return layout_; }
    /// LoRA layers of the folder's own adapter (adapter_config.json beside config.json), or 0.
    index_t adapter_layers() const noexcept { return adapter_layers_; }
    bool has_tokenizer() const noexcept { return tok_.has_value(); }
    const vila::tokenizer::tokenizer& tokenizer() const {
        if (!tok_) throw io_error(layout_.tokenizer_dir().string() + ": no tokenizer.json or tokenizer.model; give token ids instead of text");
        return *tok_;
    }
    const vision::image_processor& image_processor() const noexcept { return processor_; }
    index_t tokens_per_image() const {
        return std::visit([](auto& m) { return m.tokens_per_image(); }, *model_);
    }
    std::int32_t image_token_id() const {
        return std::visit([](auto& m) { return m.image_token_id; }, *model_);
    }

    /// Prompt ids with one image token per "<image>", rendered with a conversation template.
    std::vector<std::int32_t> encode_prompt(const std::string& text, const std::string& conv = "none") const {
        const auto& tok = tokenizer();
        const auto p = vila::tokenizer::render_prompt(conv, text, &tok);
        std::vector<std::int32_t> ids;
        if (p.add_special_tokens) ids = tok.special_prefix();
        const auto body = vila::tokenizer::encode_with_images(tok, p.text, image_token_id());
        ids.insert(ids.end(), body.begin(), body.end());
        if (p.add_special_tokens) ids.insert(ids.end(), tok.special_suffix().begin(), tok.special_suffix().end());
        return ids;
    }

    /// Decodes and preprocesses image files: pixels [tiles, 3, H, W] and, for NVILA, each
    /// image's tile grid (one image alone is tiled at every scale; several are one tile each).
    model::images load_images(const std::vector<std::string>& files) const {
        model::images out;
        std::vector<float> all;
        shape_t one;
        auto add = [&](const vision::image& im, const std::string& f) {
            const auto px = processor_.preprocess(im);
            if (!one.empty() && px.shape() != one) throw shape_error(f + ": preprocessed to " + to_string(px.shape()) + ", the others to " + to_string(one));
            one = px.shape();
            const auto h = px.to_host();
            all.insert(all.end(), h.begin(), h.end());
        };
        index_t n = 0;
        for (const auto& f : files) {
            const auto im = vision::load_image(f);
            if (layout_.s2.enabled() && files.size() == 1) {
                const auto t = vision::tile_image(im, layout_.s2, processor_.max_pixels);
                for (const auto& tile : t.images) add(tile, f), ++n;
                out.grids.push_back(t.grid);
            } else {
                add(im, f), ++n;
                out.grids.push_back({});
            }
        }
        if (files.empty()) out.pixels = tensor<float>({0, 3, layout_.vision.image_size, layout_.vision.image_size});
        else out.pixels = tensor<float>::from_host({n, one[0], one[1], one[2]}, all);
        return out;
    }

    /// What follows each "<image>" mark that mark_images adds: "\n", or nothing for a model whose
    /// image encoder frames images itself (NVILA).
    std::string image_separator() const { return layout_.image_end.empty() && layout_.image_start.empty() ? "\n" : ""; }

    /// Logits [T', V] of one prompt (ids with image tokens) and its images.
    tensor<float> logits(const std::vector<std::int32_t>& ids, const model::images& im) {
        return std::visit([&](auto& m) {
            const index_t N = index_t(im.grids.size());
            tensor<float> out = m.forward({{ids, {}, N}}, N ? &im.pixels : nullptr, N ? &im.grids : nullptr);
            out.reshape({out.dim(1), out.dim(2)});
            return out;
        }, *model_);
    }
    tensor<float> logits(const std::vector<std::int32_t>& ids, const tensor<float>& pixels) { return logits(ids, model::images::untiled(pixels)); }

    /// Generates after a prompt of ids (with image tokens) and its images; on_token streams ids.
    std::vector<std::int32_t> generate(const std::vector<std::int32_t>& ids, const model::images& im, llm::generate_options o,
                                       const std::function<bool(std::int32_t)>& on_token = nullptr) {
        return std::visit([&](auto& m) {
            for (auto e : m.llm.config.eos_token_ids) o.stop_tokens.push_back(std::int32_t(e));
            if (tok_ && tok_->eos_id()) o.stop_tokens.push_back(*tok_->eos_id());
            const index_t N = index_t(im.grids.size());
            const auto& embeds = m.embed({{ids, {}, N}}, N ? &im.pixels : nullptr, N ? &im.grids : nullptr);
            std::vector<std::int32_t> context;
            for (auto t : ids)
                if (t != m.image_token_id) context.push_back(t);
            return llm::generate_from_embeddings(m.llm, embeds, context, o, on_token);
        }, *model_);
    }
    std::vector<std::int32_t> generate(const std::vector<std::int32_t>& ids, const tensor<float>& pixels, llm::generate_options o,
                                       const std::function<bool(std::int32_t)>& on_token = nullptr) {
        return generate(ids, model::images::untiled(pixels), std::move(o), on_token);
    }

    /// The prompt with an "<image>" mark per image: unchanged when it has marks, else "<image>\n"
    /// per image in front (VILA's run script). Throws when the marks and images disagree.
    /// NVILA-era models (an image encoder framing each image) take the marks without the newline,
    /// as VILA's generate_content writes them: `separator` "".
    static std::string mark_images(const std::string& prompt, std::size_t images, const std::string& separator = "\n") {
        std::size_t marks = 0;
        const std::string mark = vila::tokenizer::image_placeholder;
        for (std::size_t p = 0; (p = prompt.find(mark, p)) != std::string::npos; p += mark.size()) ++marks;
        if (marks == images) return prompt;
        if (marks == 0) {
            std::string head;
            for (std::size_t i = 0; i < images; ++i) head += mark + separator;
            return head + prompt;
        }
        throw error("vila::assistant: the prompt has " + std::to_string(marks) + " <image> mark" + (marks == 1 ? "" : "s") + " but " +
                    std::to_string(images) + " image" + (images == 1 ? " was" : "s were") + " given");
    }

    /// Asks about images (files) in a prompt; streams text pieces to on_text (return false to
    /// stop); returns the whole answer.
    std::string ask(const std::vector<std::string>& image_files, const std::string& user_prompt, const ask_options& o = {},
                    const std::function<bool(const std::string&)>& on_text = nullptr) {
        const std::string prompt = mark_images(user_prompt, image_files.size(), image_separator());
        const auto ids = encode_prompt(prompt, o.conv);
        const auto pixels = load_images(image_files);
        vila::tokenizer::stream_decoder text(tokenizer());
        generate(ids, pixels, o, [&](std::int32_t t) {
            const std::string piece = text.push(t);
            return piece.empty() || !on_text || on_text(piece);
        });
        const std::string rest = text.finish();
        if (!rest.empty() && on_text) on_text(rest);
        return text.text();
    }

    /// A description of the three parts (vila inspect).
    std::string summary() const {
        std::ostringstream s;
        const auto& L = layout_;
        s << "model: " << L.dir.string() << " (" << (L.kind == model::layout::format::vila ? "VILA layout" : "LLaVA-HF layout") << ")\n";
        std::visit([&](auto& m) {
            auto count = [](auto& part) {
                index_t n = 0;
                part.for_each_parameter([&](const std::string&, auto& p) { n += p.value.size(); });
                return n;
            };
            const auto& v = m.vision.config;
            s << "vision tower: " << v.model_type << ", " << v.num_hidden_layers << " layers, hidden " << v.hidden_size << ", heads "
              << v.num_attention_heads << ", image " << v.image_size << " px, patch " << v.patch_size << ", select layer " << v.select_layer
              << " (" << v.select_feature << "), " << count(m.vision) << " parameters\n";
            s << "projector: " << L.projector_type << ", " << v.hidden_size << " -> " << m.llm.config.hidden_size << ", "
              << m.tokens_per_image() << " tokens per image, " << count(m.projector) << " parameters\n";
            const auto& c = m.llm.config;
            s << "llm: " << c.architecture << ", " << c.num_hidden_layers << " layers, hidden " << c.hidden_size << ", heads "
              << c.num_attention_heads << " (kv " << c.num_key_value_heads << "), vocab " << c.vocab_size << ", " << count(m.llm)
              << " parameters\n";
            s << "image token id: " << m.image_token_id << ", image aspect ratio: " << L.image_aspect_ratio << "\n";
        }, *model_);
        if (tok_) s << "tokenizer: " << tok_->vocab_size() << " ids, " << tok_->added_tokens().size() << " added tokens\n";
        return s.str();
    }

private:
    using any_model = std::variant<vlm<vision::clip, projector::any>, vlm<vision::siglip, projector::any>>;
    model::layout layout_;
    std::unique_ptr<any_model> model_;
    std::optional<vila::tokenizer::tokenizer> tok_;
    vision::image_processor processor_;
    index_t adapter_layers_ = 0;
};

}  // namespace vila
