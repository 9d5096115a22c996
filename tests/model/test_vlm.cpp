// The composed VLM against PyTorch (tests/fixtures/vlm, make_vlm.py): a VILA-layout model
// (SigLIP + mlp_downsample + Llama, two images interleaved with text: logits, loss and
// gradients in all three parts) and transformers' LlavaForConditionalGeneration (CLIP +
// mlp2x_gelu + Llama, one and two images: logits). Then batching, saving, training and errors.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/model/vlm.hpp>
#include <vila/optim/adamw.hpp>

#include "../support/backends.hpp"
#include "../support/fixtures.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {
using vila_model = vlm<vision::siglip, projector::mlp_downsample, llm::llama>;
using llava_model = vlm<vision::clip, projector::mlp2x_gelu, llm::llama>;

fs::path vlm_dir(const char* name) { return fs::path(VILA_TEST_DATA_DIR) / "vlm" / name; }

std::vector<std::int32_t> host_ids(const io::safetensors_file& f, const std::string& name) {
    tensor<std::int32_t> t;
    f.read(name, t);
    return t.to_host();
}

/// |a - b| / |b| over whole tensors (gradients: relative in norm, as the ViT tests).
template <class B1, class B2>
double relative_diff(const tensor<float, B1>& a, const tensor<float, B2>& b) {
    const auto x = a.to_host(), y = b.to_host();
    double num = 0, den = 0;
    for (std::size_t i = 0; i < x.size(); ++i) num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]), den += double(y[i]) * y[i];
    return std::sqrt(num) / std::sqrt(den);
}

fs::path scratch(const std::string& name) { return test::scratch_dir("vila_test_vlm_" + name); }
}  // namespace

TEST_CASE_TEMPLATE("VILA layout (SigLIP + mlp_downsample + Llama): logits, loss and gradients match PyTorch", B, VILA_TEST_BACKENDS) {
    auto m = vlm<vision::siglip, projector::mlp_downsample, llm::llama, B>::load(vlm_dir("vila"));
    const io::safetensors_file ex(vlm_dir("vila") / "expected.safetensors");
    CHECK(m.tokens_per_image() == 9);  // 5 x 5 patches, padded to 6 x 6, merged 2 x 2
    tensor<float, B> pixels;
    tensor<float> ref, loss_ref;
    ex.read("pixels", pixels);
    ex.read("logits", ref);
    ex.read("loss", loss_ref);
    const std::vector<model::sample> batch{{host_ids(ex, "ids"), {}, 2}};
    const auto& logits = m.forward(batch, &pixels);
    tensor<float> row = tensor_cast<float, backend::cpu>(logits);
    row.reshape(ref.shape());
    test::require_close(row, ref, 1e-4, 0, "logits");
    CHECK(m.plan().labels == host_ids(ex, "labels"));
    const auto loss = m.loss();
    CHECK(loss.loss == doctest::Approx(loss_ref.to_host()[0]).epsilon(1e-5));

    m.zero_grad();
    m.backward_loss();
    std::map<std::string, param<float, B>*> params;
    m.for_each_parameter([&](const std::string& n, param<float, B>& p) { params[n] = &p; });
    const std::map<std::string, std::string> checks = {
        {"grad.mm_projector.layers.1.weight", "mm_projector.layers.1.weight"},
        {"grad.mm_projector.layers.1.bias", "mm_projector.layers.1.bias"},
        {"grad.mm_projector.layers.2.weight", "mm_projector.layers.2.weight"},
        {"grad.mm_projector.layers.4.weight", "mm_projector.layers.4.weight"},
        {"grad.mm_projector.layers.4.bias", "mm_projector.layers.4.bias"},
        {"grad.vision_tower.patch_embedding", "vision_tower.vision_model.embeddings.patch_embedding.weight"},
        {"grad.vision_tower.layer0.fc1", "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight"},
        {"grad.llm.embed_tokens", "llm.model.embed_tokens.weight"},
        {"grad.llm.layer1.q_proj", "llm.model.layers.1.self_attn.q_proj.weight"}};
    for (const auto& check : checks) {  // (no structured binding: clang 14 cannot capture one in CHECK_MESSAGE)
        const std::string& name = check.second;
        tensor<float> g;
        ex.read(check.first, g);
        REQUIRE(params.count(name));
        CHECK_MESSAGE(relative_diff(params[name]->grad, g) < 1e-3, name);
    }
}

TEST_CASE("LLaVA-HF LlavaForConditionalGeneration (CLIP + mlp2x_gelu + Llama): logits with one and two images") {
    auto m = llava_model::load(vlm_dir("llava"));
    const io::safetensors_file ex(vlm_dir("llava") / "expected.safetensors");
    CHECK(m.image_token_id == 299);
    CHECK(m.tokens_per_image() == 16);
    for (int images : {1, 2}) {
        CAPTURE(images);
        const auto n = std::to_string(images);
        tensor<float> pixels, ref;
        ex.read("pixels" + n, pixels);
        ex.read("logits" + n, ref);
        const auto ids = host_ids(ex, "ids" + n);  // expanded: 16 image tokens per image, as transformers' processor writes
        tensor<float> out = m.forward({{ids, {}, images}}, &pixels);
        out.reshape(ref.shape());
        test::require_close(out, ref, 1e-4, 0, "expanded prompt");
        std::vector<std::int32_t> compact;  // one image token per image, as a prompt's "<image>" tokenizes
        for (std::size_t i = 0; i < ids.size(); ++i)
            if (ids[i] != 299 || i == 0 || ids[i - 1] != 299) compact.push_back(ids[i]);
        CHECK(compact.size() == ids.size() - std::size_t(15 * images));
        out = m.forward({{compact, {}, images}}, &pixels);
        out.reshape(ref.shape());
        test::require_close(out, ref, 1e-4, 0, "compact prompt");
    }
}

TEST_CASE("a padded batch gives every sample the logits it gets alone, and labels ignore images and padding") {
    auto m = vila_model::load(vlm_dir("vila"));
    const io::safetensors_file ex(vlm_dir("vila") / "expected.safetensors");
    tensor<float> pixels;
    ex.read("pixels", pixels);
    const auto ids = host_ids(ex, "ids");
    const std::int32_t I = model::image_placeholder;
    // sample 0: two images; sample 1: text only, shorter; sample 2: one image, then text
    const std::vector<model::sample> batch{{ids, {}, 2}, {{1, 40, 41, 42}, {}, 0}, {{1, I, 50, 51, 52}, {}, 1}};
    // images for sample 2 = the second fixture image
    const auto ph = pixels.to_host();
    std::vector<float> three(ph);
    three.insert(three.end(), ph.begin() + std::ptrdiff_t(ph.size() / 2), ph.end());
    const auto all = tensor<float>::from_host({3, 3, 40, 40}, three);
    const auto batched = m.forward(batch, &all).to_host();
    const auto plan = m.plan();
    CHECK(plan.padded);
    CHECK(plan.lengths == std::vector<index_t>{51, 4, 13});
    CHECK(plan.labels[std::size_t(plan.length + 4)] == nn::ignore_index);       // padding of sample 1
    CHECK(plan.labels[std::size_t(2 * plan.length + 1)] == nn::ignore_index);   // image of sample 2
    CHECK(plan.labels[std::size_t(2 * plan.length + 10)] == 50);
    const index_t V = 300, Tn = plan.length;
    const std::vector<tensor<float>> alone_pixels{pixels, tensor<float>(), tensor<float>::from_host({1, 3, 40, 40}, std::vector<float>(ph.begin() + std::ptrdiff_t(ph.size() / 2), ph.end()))};
    for (std::size_t b = 0; b < batch.size(); ++b) {
        CAPTURE(b);
        const auto alone = m.forward({batch[b]}, b == 1 ? nullptr : &alone_pixels[b]).to_host();
        double worst = 0;
        for (index_t t = 0; t < plan.lengths[b]; ++t)
            for (index_t v = 0; v < V; ++v)
                worst = std::max(worst, std::abs(double(batched[std::size_t((index_t(b) * Tn + t) * V + v)]) - alone[std::size_t(t * V + v)]));
        CHECK(worst < 1e-4);
    }
}

TEST_CASE("save writes the VILA layout and reloading gives identical logits") {
    auto m = llava_model::load(vlm_dir("llava"));
    const auto dir = scratch("saved");
    m.save(dir);
    for (const char* f : {"config.json", "llm/config.json", "llm/model.safetensors", "vision_tower/config.json",
                          "vision_tower/model.safetensors", "mm_projector/config.json", "mm_projector/model.safetensors"})
        CHECK_MESSAGE(fs::exists(dir / f), f);
    const auto L = model::read_layout(dir);
    CHECK(L.kind == model::layout::format::vila);
    CHECK(L.projector_type == "mlp2x_gelu");
    CHECK(L.vision.select_feature == "patch");
    auto r = llava_model::load(dir);
    CHECK(r.image_token_id == 299);
    const io::safetensors_file ex(vlm_dir("llava") / "expected.safetensors");
    tensor<float> pixels;
    ex.read("pixels2", pixels);
    const std::vector<model::sample> batch{{host_ids(ex, "ids2"), {}, 2}};
    const auto a = m.forward(batch, &pixels).to_host();
    const auto b = r.forward(batch, &pixels).to_host();
    const auto first = std::size_t(std::mismatch(a.begin(), a.end(), b.begin()).first - a.begin());
    INFO("first difference at " << first << " of " << a.size());
    CHECK(a == b);  // bit for bit: buffers are 64-byte aligned, so every copy sums in the same order

    auto v = vila_model::load(vlm_dir("vila"));  // and the VILA fixture round-trips too
    const auto dir2 = scratch("saved_vila");
    v.save(dir2);
    auto v2 = vila_model::load(dir2);
    std::size_t compared = 0;
    std::map<std::string, std::vector<float>> before;
    v.for_each_parameter([&](const std::string& n, param<float>& p) { before[n] = p.value.to_host(); });
    v2.for_each_parameter([&](const std::string& n, param<float>& p) {
        CHECK_MESSAGE(before[n] == p.value.to_host(), n);
        ++compared;
    });
    CHECK(compared == before.size());
    fs::remove_all(dir);
    fs::remove_all(dir2);
}

TEST_CASE("training the projector and LLM lowers the loss, and a frozen vision tower gets no gradient") {
    auto m = vila_model::load(vlm_dir("vila"));
    const io::safetensors_file ex(vlm_dir("vila") / "expected.safetensors");
    tensor<float> pixels;
    ex.read("pixels", pixels);
    CHECK(m.set_trainable("vision_tower.", false) > 10);
    optim::adamw<float> opt({1e-2});
    const std::vector<model::sample> batch{{host_ids(ex, "ids"), {}, 2}};
    float first = 0, last = 0;
    for (int step = 0; step < 8; ++step) {
        m.forward(batch, &pixels);
        const float l = m.loss().loss;
        if (step == 0) first = l;
        last = l;
        m.zero_grad();
        m.backward_loss();
        opt.step(m);
    }
    MESSAGE("loss " << first << " -> " << last);
    CHECK(last < 0.5f * first);
    CHECK(m.vision.patch_weight.grad.empty());
}

TEST_CASE("VLM bad input: image count mismatch, wrong types, missing weights") {
    auto m = vila_model::load(vlm_dir("vila"));
    const io::safetensors_file ex(vlm_dir("vila") / "expected.safetensors");
    tensor<float> pixels;
    ex.read("pixels", pixels);
    const std::int32_t I = model::image_placeholder;
    CHECK_THROWS_WITH_AS(m.forward({{{1, 5, 6}, {}, 0}, {{1, I, I, 7}, {}, 1}}, &pixels),
                         doctest::Contains("sample 1 has 2 image tokens but 1 image"), error);
    CHECK_THROWS_WITH_AS(m.forward({{{1, I, 6}, {}, -1}}, &pixels), doctest::Contains("call for 1 image but 2 were given"), error);
    CHECK_THROWS_WITH_AS(m.forward({{{1, 5, 300}, {}, 0}}), doctest::Contains("sample 0: token id 300 at position 2"), error);
    CHECK_THROWS_WITH_AS(llava_model::load(vlm_dir("vila")), doctest::Contains("the vision tower is siglip_vision_model"), config_error);
    CHECK_THROWS_WITH_AS((vlm<vision::siglip, projector::linear, llm::llama>::load(vlm_dir("vila"))),
                         doctest::Contains("the projector is mlp_downsample"), config_error);
    CHECK_THROWS_WITH_AS(model::read_layout(vlm_dir("vila") / "llm"), doctest::Contains("neither a VILA"), config_error);

    // A copy of the VILA fixture, broken one way at a time.
    const auto dir = scratch("broken");
    fs::copy(vlm_dir("vila"), dir, fs::copy_options::recursive);
    auto rewrite = [&](const fs::path& file, const std::string& from, const std::string& to) {
        std::ifstream in(file);
        std::string s((std::istreambuf_iterator<char>(in)), {});
        const auto at = s.find(from);
        REQUIRE(at != std::string::npos);
        s.replace(at, from.size(), to);
        std::ofstream(file) << s;
    };
    rewrite(dir / "mm_projector" / "config.json", "\"mlp_downsample\"", "\"qformer\"");
    CHECK_THROWS_WITH_AS(model::read_layout(dir), doctest::Contains("mm_projector_type: 'qformer' is not supported"), config_error);
    rewrite(dir / "mm_projector" / "config.json", "\"qformer\"", "\"mlp_downsample\"");
    rewrite(dir / "vision_tower" / "config.json", "\"siglip_vision_model\"", "\"eva_vision_model\"");
    CHECK_THROWS_WITH_AS(model::read_layout(dir), doctest::Contains("'eva_vision_model' is not a supported vision tower"), config_error);
    rewrite(dir / "vision_tower" / "config.json", "\"eva_vision_model\"", "\"siglip_vision_model\"");
    {  // projector weights without layers.4.bias
        io::safetensors_checkpoint ck(dir / "mm_projector");
        std::map<std::string, io::tensor_to_write> keep;
        for (const auto& n : ck.names()) {
            if (n == "layers.4.bias") continue;
            tensor<float> t;
            ck.read(n, t);
            keep[n] = {t.shape(), t.to_host()};
        }
        io::save_safetensors(dir / "mm_projector" / "model.safetensors", keep);
    }
    CHECK_THROWS_WITH_AS(vila_model::load(dir), doctest::Contains("missing tensor 'layers.4.bias'"), format_error);
    fs::remove_all(dir / "mm_projector");
    CHECK_THROWS_WITH_AS(model::read_layout(dir), doctest::Contains("missing the mm_projector/ folder"), io_error);
    fs::remove_all(dir);
}

TEST_CASE("greedy generation from a spliced prompt matches PyTorch (KV cache after an embedding prefill)") {
    llm::generate_options o;
    o.max_new_tokens = 8;
    {
        auto m = vila_model::load(vlm_dir("vila"));
        const io::safetensors_file ex(vlm_dir("vila") / "expected.safetensors");
        tensor<float> pixels;
        ex.read("pixels", pixels);
        const auto ids = host_ids(ex, "ids");
        const auto& embeds = m.embed({{ids, {}, 2}}, &pixels);
        CHECK(embeds.dim(1) == 51);
        CHECK(llm::generate_from_embeddings(m.llm, embeds, ids, o) == host_ids(ex, "greedy"));
    }
    auto m = llava_model::load(vlm_dir("llava"));
    const io::safetensors_file ex(vlm_dir("llava") / "expected.safetensors");
    for (const char* n : {"1", "2"}) {
        CAPTURE(n);
        tensor<float> pixels;
        ex.read(std::string("pixels") + n, pixels);
        const auto ids = host_ids(ex, std::string("ids") + n);
        const auto& embeds = m.embed({{ids, {}, pixels.dim(0)}}, &pixels);
        CHECK(llm::generate_from_embeddings(m.llm, embeds, ids, o) == host_ids(ex, std::string("greedy") + n));
    }
}
