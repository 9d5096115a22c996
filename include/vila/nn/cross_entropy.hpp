// vila/nn/cross_entropy.hpp — token cross-entropy with ignore index -100 (PyTorch semantics).
//
// loss = mean over rows whose target != ignore_index of (logsumexp(logits_r) - logits_r[target_r]).
// Shapes: logits [..., V], targets [...] (int32). Saved: lse [rows].
// Backward: dlogits_r += dloss / count * (softmax(logits_r) - onehot(target_r)) for counted rows.
// When no row counts, PyTorch returns NaN; we return loss 0 with count 0 (and zero gradients) so
// the caller can see the empty batch and decide (the trainer warns: a silent all-ignored batch is
// the "tokenization mismatch" failure of the reference trainers).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../backend/cpu.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {

inline constexpr std::int32_t ignore_index = -100;

template <class T>
struct cross_entropy_result {
    T loss = 0;         // mean over counted rows
    index_t count = 0;  // rows whose target != ignore_index
};

namespace detail {
template <class T>
struct cross_entropy_row {
    const T* logits;
    const std::int32_t* targets;
    T* lse;
    T* row_loss;
    T* counted;
    index_t vocab;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* x = logits + r * vocab;
        const T m = max_of(x, vocab);
        lse[r] = m + std::log(exp_shifted_sum(x, m, vocab));
        const bool use = targets[r] != ignore_index;
        row_loss[r] = use ? lse[r] - x[targets[r]] : T(0);
        counted[r] = use ? T(1) : T(0);
    }
};
// Accumulate: dlogits += g; otherwise dlogits = g, which may then alias logits (each element
// reads only its own logit before writing it).
template <class T, bool Accumulate = true>
struct cross_entropy_grad {
    const T* logits;
    const std::int32_t* targets;
    const T* lse;
    T* dlogits;
    index_t vocab;
    T scale;  // dloss / count
    VILA_HOST_DEVICE void operator()(index_t idx) const {
        const index_t r = idx / vocab, i = idx % vocab;
        const std::int32_t t = targets[r];
        const T g = t == ignore_index ? T(0) : scale * (std::exp(logits[idx] - lse[r]) - (i == t ? T(1) : T(0)));
        if constexpr (Accumulate) dlogits[idx] += g;
        else dlogits[idx] = g;
    }
};

/// The same gradient a row at a time (the CPU backend's form: vectorised exp, no index division
/// per element): dlogits_r (+)= scale exp(logits_r - lse_r), minus scale at the target.
template <class T, bool Accumulate = true>
struct cross_entropy_grad_row {
    cross_entropy_grad<T, Accumulate> e;  // the same operands, read a row at a time
    void operator()(index_t r) const {
        const std::int32_t t = e.targets[r];
        T* g = e.dlogits + r * e.vocab;
        if (t == ignore_index) {
            if constexpr (!Accumulate) for (index_t i = 0; i < e.vocab; ++i) g[i] = T(0);
            return;
        }
        using array = Eigen::Array<T, Eigen::Dynamic, 1>;
        const auto p = (Eigen::Map<const array>(e.logits + r * e.vocab, e.vocab) - e.lse[r]).exp() * e.scale;
        if constexpr (Accumulate) Eigen::Map<array>(g, e.vocab) += p;
        else Eigen::Map<array>(g, e.vocab) = p;
        g[t] -= e.scale;
    }
};
/// Runs the gradient with the row form on the CPU backend, the element form elsewhere.
template <bool Accumulate, class T, class B>
void cross_entropy_grad_run(const tensor<T, B>& logits, const tensor<std::int32_t, B>& targets, const tensor<T, B>& lse,
                            T* dlogits, T scale) {
    const cross_entropy_grad<T, Accumulate> e{logits.data(), targets.data(), lse.data(), dlogits, logits.dim(-1), scale};
    if constexpr (std::is_same<B, backend::cpu>::value) B::parallel_for(targets.size(), cross_entropy_grad_row<T, Accumulate>{e});
    else B::parallel_for(logits.size(), e);
}

template <class T, class B>
index_t cross_entropy_check(const char* where, const tensor<T, B>& logits, const tensor<std::int32_t, B>& targets) {
    check_rank_at_least(where, "logits", logits.shape(), 1);
    shape_t expect(logits.shape().begin(), logits.shape().end() - 1);
    check_shape(where, "targets", targets.shape(), expect);
    const index_t vocab = logits.dim(-1);
    if (vocab <= 0) throw shape_error(std::string(where) + ": logits " + to_string(logits.shape()) + " have an empty vocabulary");
    const std::vector<std::int32_t> h = targets.to_host();
    for (std::size_t i = 0; i < h.size(); ++i)
        if (h[i] != ignore_index && (h[i] < 0 || h[i] >= vocab))
            throw error(std::string(where) + ": target " + std::to_string(h[i]) + " at row " + std::to_string(i) +
                        " is outside the vocabulary [0, " + std::to_string(vocab) + ") and is not -100");
    return vocab;
}
}  // namespace detail

template <class T, class B>
cross_entropy_result<T> cross_entropy_forward(const tensor<T, B>& logits, const tensor<std::int32_t, B>& targets,
                                              tensor<T, B>& lse) {
    const index_t vocab = detail::cross_entropy_check("vila::nn::cross_entropy", logits, targets);
    const index_t rows = targets.size();
    lse.ensure_shape({rows});
    tensor<T, B> row_loss({rows}), counted({rows});
    B::parallel_for(rows, detail::cross_entropy_row<T>{logits.data(), targets.data(), lse.data(), row_loss.data(),
                                                       counted.data(), vocab});
    cross_entropy_result<T> res;
    res.count = static_cast<index_t>(B::sum(counted.data(), rows) + T(0.5));
    res.loss = res.count ? B::sum(row_loss.data(), rows) / static_cast<T>(res.count) : T(0);
    return res;
}

/// dlogits += dloss * d(mean loss)/d(logits).
template <class T, class B>
void cross_entropy_backward(const tensor<T, B>& logits, const tensor<std::int32_t, B>& targets,
                            const tensor<T, B>& lse, index_t count, T dloss, tensor<T, B>& dlogits) {
    constexpr const char* where = "vila::nn::cross_entropy backward";
    check_shape(where, "dlogits", dlogits.shape(), logits.shape());
    check_shape(where, "lse", lse.shape(), {targets.size()});
    if (count == 0) return;
    detail::cross_entropy_grad_run<true>(logits, targets, lse, dlogits.data(), dloss / static_cast<T>(count));
}

/// logits = dloss * d(mean loss)/d(logits): the gradient overwrites the logits, so a training
/// step needs no second [rows, vocab] buffer (250 MB at batch 8 x 256, vocab 32000) and no pass
/// to zero one. The logits are gone afterwards.
template <class T, class B>
void cross_entropy_backward_inplace(tensor<T, B>& logits, const tensor<std::int32_t, B>& targets, const tensor<T, B>& lse,
                                    index_t count, T dloss) {
    constexpr const char* where = "vila::nn::cross_entropy backward";
    check_shape(where, "lse", lse.shape(), {targets.size()});
    if (count == 0) {
        logits.zero();
        return;
    }
    detail::cross_entropy_grad_run<false>(logits, targets, lse, logits.data(), dloss / static_cast<T>(count));
}

}  // namespace vila::nn
