// vila/nn/linear.hpp — y = x W^T + b, with W stored [out, in] as in PyTorch.
//
// Shapes: x [..., in], W [out, in], b [out] (optional), y [..., out].
// Backward accumulates: dx += dy W, dW += dy^T x, db += sum over rows of dy.
// A linear layer may carry a LoRA adapter (nn/lora.hpp): attach_lora() adds it, and forward and
// backward then include its low-rank update.
#pragma once
#include <optional>
#include <string>
#include <utility>

#include "../core/param.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"
#include "lora.hpp"

namespace vila::nn {

template <class T, class B>
void linear_forward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>* b, tensor<T, B>& y) {
    constexpr const char* where = "vila::nn::linear";
    check_shape(where, "weight", w.shape(), {any, any});
    const index_t out = w.dim(0), in = w.dim(1);
    check_rank_at_least(where, "x", x.shape(), 1);
    check_shapes(x.dim(-1) == in, where, "x", x.shape(), "weight", w.shape(), "disagree on in_features");
    if (b) check_shape(where, "bias", b->shape(), {out});
    const index_t rows = x.size() / (in ? in : 1);
    y.ensure_shape(with_last(x.shape(), out));  // y [rows, out]
    if (b) B::parallel_for(rows, detail::broadcast_row<T>{b->data(), y.data(), out});
    B::gemm(false, true, rows, out, in, T(1), x.data(), in, w.data(), in, b ? T(1) : T(0), y.data(), out);
}

template <class T, class B>
void linear_backward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>& dy, tensor<T, B>* dx,
                     tensor<T, B>* dw, tensor<T, B>* db) {
    constexpr const char* where = "vila::nn::linear backward";
    const index_t out = w.dim(0), in = w.dim(1);
    const index_t rows = x.size() / (in ? in : 1);
    check_shape(where, "dy", dy.shape(), with_last(x.shape(), out));
    if (dx) {
        check_shape(where, "dx", dx->shape(), x.shape());
        B::gemm(false, false, rows, in, out, T(1), dy.data(), out, w.data(), in, T(1), dx->data(), in);  // [rows,out][out,in]
    }
    if (dw) {
        check_shape(where, "dW", dw->shape(), w.shape());
        B::gemm(true, false, out, in, rows, T(1), dy.data(), out, x.data(), in, T(1), dw->data(), in);  // [out,rows][rows,in]
    }
    if (db) {
        check_shape(where, "db", db->shape(), {out});
        B::parallel_for(out, detail::column_sum_add<T>{dy.data(), db->data(), rows, out});
    }
}

/// A linear layer owning its parameters (HF names "<prefix>.weight", "<prefix>.bias").
template <class T, class B = backend::cpu>
class linear {
public:
    struct config {
        index_t in_features = 0, out_features = 0;
        bool bias = true;
    };
    /// What backward needs: the input (not copied; it must outlive backward) and, with a LoRA
    /// adapter, u = x A^T.
    struct cache {
        const tensor<T, B>* x = nullptr;
        tensor<T, B> u, xd;  // xd: the adapter's input after dropout (training with dropout only)
    };

    param<T, B> weight, bias;
    std::optional<lora_adapter<T, B>> lora;

    linear() = default;
    linear(const config& c, const std::string& prefix)
        : weight(prefix + ".weight", {c.out_features, c.in_features}),
          bias(c.bias ? param<T, B>(prefix + ".bias", {c.out_features}) : param<T, B>()) {}

    bool has_bias() const noexcept { return !bias.name.empty(); }

    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache* c = nullptr) const {
        linear_forward(x, weight.value, has_bias() ? &bias.value : nullptr, y);
        if (c) c->x = &x;
        if (lora && !lora->merged) {
            tensor<T, B> scratch, scratch_xd;
            tensor<T, B>& u = c ? c->u : scratch;
            const index_t in = weight.value.dim(1), out = weight.value.dim(0), r = lora->options.r, rows = x.size() / (in ? in : 1);
            const T* xa = x.data();
            if (lora->drops()) {  // PEFT: lora_B(lora_A(dropout(x)))
                tensor<T, B>& xd = c ? c->xd : scratch_xd;
                xd.ensure_shape(x.shape());
                B::parallel_for(x.size(), detail::lora_dropout<T>{x.data(), xd.data(), lora->dropout_seed, lora->dropout_step, lora->options.dropout, false});
                xa = xd.data();
            }
            u.ensure_shape(with_last(x.shape(), r));
            B::gemm(false, true, rows, r, in, T(1), xa, in, lora->A.value.data(), in, T(0), u.data(), r);   // u = x A^T
            B::gemm(false, true, rows, out, r, lora->scaling(), u.data(), r, lora->Bm.value.data(), r, T(1), y.data(), out);  // y += s u B^T
        }
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        linear_backward(*c.x, weight.value, dy, dx, weight.grad_if_trainable(),
                        has_bias() ? bias.grad_if_trainable() : nullptr);
        if (!lora || lora->merged) return;
        auto& L = *lora;
        const index_t in = weight.value.dim(1), out = weight.value.dim(0), r = L.options.r, rows = c.x->size() / (in ? in : 1);
        const T s = L.scaling();
        if (L.Bm.trainable) B::gemm(true, false, out, r, rows, s, dy.data(), out, c.u.data(), r, T(1), L.Bm.grad.data(), r);  // dB += s dy^T u
        if (!L.A.trainable && !dx) return;
        tensor<T, B> du(with_last(c.x->shape(), r));
        B::gemm(false, false, rows, r, out, s, dy.data(), out, L.Bm.value.data(), r, T(0), du.data(), r);  // du = s dy B
        const bool dropped = L.drops();
        const T* xa = dropped ? c.xd.data() : c.x->data();
        if (L.A.trainable) B::gemm(true, false, r, in, rows, T(1), du.data(), r, xa, in, T(1), L.A.grad.data(), in);  // dA += du^T x
        if (!dx) return;
        if (!dropped) {
            B::gemm(false, false, rows, in, r, T(1), du.data(), r, L.A.value.data(), in, T(1), dx->data(), in);  // dx += du A
        } else {  // dx += mask (du A) / (1 - p): the same mask, recomputed
            tensor<T, B> dxd(c.x->shape());
            B::gemm(false, false, rows, in, r, T(1), du.data(), r, L.A.value.data(), in, T(0), dxd.data(), in);
            B::parallel_for(dxd.size(), detail::lora_dropout<T>{dxd.data(), dx->data(), L.dropout_seed, L.dropout_step, L.options.dropout, true});
        }
    }
    template <class F>
    void for_each_parameter(F&& f) {
        f(weight.name, weight);
        if (has_bias()) f(bias.name, bias);
        if (lora) {
            f(lora->A.name, lora->A);
            f(lora->Bm.name, lora->Bm);
        }
    }

    /// The layer's name ("model.layers.0.self_attn.q_proj"): its weight's name without ".weight".
    std::string module_name() const { return weight.name.substr(0, weight.name.size() - 7); }

    /// Adds a LoRA adapter with PEFT's initialisation (A from `gen`, B zero). Replaces any adapter.
    void attach_lora(const lora_options& o, rng& gen) {
        if (o.r <= 0) throw config_error("vila::nn::linear: LoRA rank must be positive, got " + std::to_string(o.r));
        const index_t in = weight.value.dim(1), out = weight.value.dim(0);
        lora_adapter<T, B> L;
        L.options = o;
        L.A = param<T, B>(module_name() + ".lora_A.weight", {o.r, in});
        L.Bm = param<T, B>(module_name() + ".lora_B.weight", {out, o.r});
        L.dropout_seed = detail::name_seed(module_name());
        const double bound = 1.0 / std::sqrt(double(in));
        gen.fill_uniform(L.A.value, -bound, bound);
        lora = std::move(L);
    }
    /// W += s B A (then forward skips the adapter); unmerge() undoes it.
    void merge_lora() { fold_lora(true); }
    void unmerge_lora() { fold_lora(false); }

private:
    void fold_lora(bool in) {
        if (!lora || lora->merged == in) return;
        const index_t n_in = weight.value.dim(1), out = weight.value.dim(0), r = lora->options.r;
        const T s = in ? lora->scaling() : T(-lora->scaling());
        B::gemm(false, false, out, n_in, r, s, lora->Bm.value.data(), r, lora->A.value.data(), n_in, T(1), weight.value.data(), n_in);
        lora->merged = in;
    }

public:
};

}  // namespace vila::nn
