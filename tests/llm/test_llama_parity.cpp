// The LLaMA-family decoder against HF transformers (tests/fixtures/llm, make_llama.py):
// logits, loss, every parameter gradient, 10 AdamW steps; BF16 loading; save/load round trip.
#include <cmath>
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/llm/llama.hpp>
#include <vila/optim/adamw.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
std::filesystem::path case_dir(const std::string& name) { return std::filesystem::path(VILA_TEST_DATA_DIR) / "llm" / name; }

template <class T>
tensor<T> read(const io::safetensors_file& f, const std::string& name) {
    tensor<T> t;
    f.read(name, t);
    return t;
}
tensor<std::int32_t> read_ids(const io::safetensors_file& f, const std::string& name) {
    const auto& info = f.info(name);
    REQUIRE(info.type == io::dtype::i32);
    std::vector<std::int32_t> h(std::size_t(numel(info.shape)));
    std::memcpy(h.data(), f.bytes(info), h.size() * 4);
    return tensor<std::int32_t>::from_host(info.shape, h);
}
double rel_norm_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double num = 0, den = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        den += double(b[i]) * b[i];
    }
    return std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}
}  // namespace

TEST_CASE("llama: logits, loss, gradients and 10 AdamW steps match transformers") {
    for (const char* name : {"llama_gqa", "llama_tied_bias", "llama3_rope_scaling", "qwen2_bias"}) {
        CAPTURE(name);
        auto model = llm::llama<float>::load(case_dir(name));
        const io::safetensors_file ex(case_dir(name) / "expected.safetensors");
        const auto ids = read_ids(ex, "ids"), mask = read_ids(ex, "attention_mask"), labels = read_ids(ex, "labels");
        const bool has_pos = ex.contains("position_ids");
        const tensor<std::int32_t> pos = has_pos ? read_ids(ex, "position_ids") : tensor<std::int32_t>();
        const tensor<std::int32_t>* pos_p = has_pos ? &pos : nullptr;

        model.forward(ids, &mask, pos_p);
        test::require_close(model.logits(), read<float>(ex, "logits"), 1e-4, 0, std::string(name) + " logits");
        const auto loss = model.loss(labels);
        const float ref_loss = read<float>(ex, "loss").to_host()[0];
        CHECK(std::abs(loss.loss - ref_loss) <= 1e-5 * std::abs(ref_loss));

        model.zero_grad();
        model.backward_loss();
        std::size_t grads = 0;
        model.for_each_parameter([&](const std::string& n, param<float>& p) {
            const double d = rel_norm_diff(p.grad.to_host(), read<float>(ex, "grad." + n).to_host());
            CHECK_MESSAGE(d <= 1e-3, n, " gradient relative difference ", d);
            ++grads;
        });
        CHECK(grads > 10);

        // 10 AdamW steps from the loaded weights (fresh model: the gradients above were not applied)
        auto m2 = llm::llama<float>::load(case_dir(name));
        optim::adamw<float> opt({1e-3, 0.9, 0.999, 1e-8, 0.01});
        const auto ref = read<float>(ex, "adamw_losses").to_host();
        for (std::size_t s = 0; s < ref.size(); ++s) {
            m2.forward(ids, &mask, pos_p);
            const float l = m2.loss(labels).loss;
            CHECK_MESSAGE(std::abs(l - ref[s]) <= 1e-4 * std::abs(ref[s]), "step ", s, ": ", l, " vs ", ref[s]);
            m2.zero_grad();
            m2.backward_loss();
            opt.step(m2);
        }
    }
}

TEST_CASE("llama: backward_loss computes the logits' gradient in their memory, and says so when they are read after it") {
    auto model = llm::llama<float>::load(case_dir("llama_gqa"));
    const io::safetensors_file ex(case_dir("llama_gqa") / "expected.safetensors");
    const auto ids = read_ids(ex, "ids"), mask = read_ids(ex, "attention_mask"), labels = read_ids(ex, "labels");
    model.forward(ids, &mask);
    const float first = model.loss(labels).loss;
    const auto logits = model.logits().to_host();
    model.zero_grad();
    model.backward_loss();
    CHECK_THROWS_AS((void)model.logits(), vila::error);
    CHECK_THROWS_AS(model.backward_loss(), vila::error);
    CHECK_THROWS_AS(model.loss(labels), vila::error);
    // a new forward gives the logits (and the loss) back, bit for bit
    model.forward(ids, &mask);
    CHECK(model.logits().to_host() == logits);
    CHECK(model.loss(labels).loss == first);
    // the gradient equals backward() from a separate dlogits buffer
    std::vector<std::vector<float>> in_place;
    model.for_each_parameter([&](const std::string&, param<float>& p) { in_place.push_back(p.grad.to_host()); });
    tensor<float> lse, dlogits(model.logits().shape());
    const auto h = labels.to_host();
    auto shifted = h;
    const index_t Bn = labels.dim(0), Tn = labels.dim(1);
    for (index_t b = 0; b < Bn; ++b)
        for (index_t t = 0; t < Tn; ++t) shifted[std::size_t(b * Tn + t)] = t + 1 < Tn ? h[std::size_t(b * Tn + t + 1)] : nn::ignore_index;
    const auto targets = tensor<std::int32_t>::from_host(labels.shape(), shifted);
    const auto ce = nn::cross_entropy_forward(model.logits(), targets, lse);
    nn::cross_entropy_backward(model.logits(), targets, lse, ce.count, 1.0f, dlogits);
    model.zero_grad();
    model.backward(dlogits);
    std::size_t i = 0;
    model.for_each_parameter([&](const std::string& n, param<float>& p) {
        CAPTURE(n);
        CHECK(p.grad.to_host() == in_place[i++]);
    });
}

TEST_CASE("llama: BF16 weights load exactly and match transformers within bf16 precision") {
    auto model = llm::llama<float>::load(case_dir("llama_gqa_bf16"));
    const io::safetensors_file w(case_dir("llama_gqa_bf16") / "model.safetensors");
    CHECK(w.info("model.embed_tokens.weight").type == io::dtype::bf16);
    const io::safetensors_file ex(case_dir("llama_gqa_bf16") / "expected.safetensors");
    const auto ids = read_ids(ex, "ids"), mask = read_ids(ex, "attention_mask");
    model.forward(ids, &mask);
    // same bf16 weights computed in fp32 by transformers: fp32 agreement
    test::require_close(model.logits(), read<float>(ex, "logits_f32_of_bf16_weights"), 1e-4, 0, "fp32 compute");
    // transformers computing in bf16: agreement to bf16's ~3 significant digits
    const auto a = model.logits().to_host(), b = read<float>(ex, "logits_bf16").to_host();
    double mean = 0;
    for (std::size_t i = 0; i < a.size(); ++i) mean += std::abs(double(a[i]) - b[i]);
    mean /= double(a.size());
    CHECK(mean < 0.03);
    CHECK(rel_norm_diff(a, b) < 0.02);
}

TEST_CASE("llama: save then load gives identical logits") {
    auto model = llm::llama<float>::load(case_dir("qwen2_bias"));
    const io::safetensors_file ex(case_dir("qwen2_bias") / "expected.safetensors");
    const auto ids = read_ids(ex, "ids");
    const auto before = model.forward(ids).to_host();
    const auto dir = test::scratch_dir("vila_test_llama_save");
    model.save(dir);
    auto again = llm::llama<float>::load(dir);
    CHECK(again.config.architecture == "Qwen2ForCausalLM");
    CHECK(again.forward(ids).to_host() == before);
    std::filesystem::remove_all(dir);
}
