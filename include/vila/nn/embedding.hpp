// vila/nn/embedding.hpp — token embedding lookup, y[t] = W[id[t]].
//
// Shapes: ids [...] (int32), W [vocab, dim], y [..., dim].
// An id outside [0, vocab) throws vila::error before any memory is touched.
// Backward accumulates dW[id[t]] += dy[t] (skipping negative ids: positions that hold no token,
// such as a VLM's image features); it runs over columns so repeated ids never race.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/param.hpp"
#include "../core/tensor.hpp"

namespace vila::nn {
namespace detail {
template <class T>
struct embedding_gather {
    const std::int32_t* ids;
    const T* w;
    T* y;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t i) const { y[i] = w[index_t(ids[i / dim]) * dim + i % dim]; }
};
template <class T>
struct embedding_scatter_add {
    const std::int32_t* ids;
    const T* dy;
    T* dw;
    index_t tokens, dim;
    VILA_HOST_DEVICE void operator()(index_t c) const {  // a negative id (a VLM's image position) adds nothing
        for (index_t t = 0; t < tokens; ++t)
            if (ids[t] >= 0) dw[index_t(ids[t]) * dim + c] += dy[t * dim + c];
    }
};
}  // namespace detail

/// Throws vila::error when an id is outside [0, vocab). Checks on the host.
template <class B>
void check_token_ids(const tensor<std::int32_t, B>& ids, index_t vocab, const char* where) {
    const std::vector<std::int32_t> h = ids.to_host();
    for (std::size_t i = 0; i < h.size(); ++i)
        if (h[i] < 0 || h[i] >= vocab)
            throw error(std::string(where) + ": token id " + std::to_string(h[i]) + " at position " +
                        std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

template <class T, class B>
void embedding_forward(const tensor<std::int32_t, B>& ids, const tensor<T, B>& w, tensor<T, B>& y) {
    check_shape("vila::nn::embedding", "weight", w.shape(), {any, any});
    check_token_ids(ids, w.dim(0), "vila::nn::embedding");
    const index_t dim = w.dim(1);
    shape_t out = ids.shape();
    out.push_back(dim);
    y.ensure_shape(out);
    B::parallel_for(y.size(), detail::embedding_gather<T>{ids.data(), w.data(), y.data(), dim});
}

template <class T, class B>
void embedding_backward(const tensor<std::int32_t, B>& ids, const tensor<T, B>& dy, tensor<T, B>& dw) {
    const index_t dim = dw.dim(-1);
    shape_t expect = ids.shape();
    expect.push_back(dim);
    check_shape("vila::nn::embedding backward", "dy", dy.shape(), expect);
    B::parallel_for(dim, detail::embedding_scatter_add<T>{ids.data(), dy.data(), dw.data(), ids.size(), dim});
}

/// An embedding table owning its parameter (HF name "<prefix>.weight").
template <class T, class B = backend::cpu>
class embedding {
public:
    struct config {
        index_t vocab = 0, dim = 0;
    };
    struct cache {
        const tensor<std::int32_t, B>* ids = nullptr;
    };

    param<T, B> weight;

    embedding() = default;
    embedding(const config& c, const std::string& prefix) : weight(prefix + ".weight", {c.vocab, c.dim}) {}

    void forward(const tensor<std::int32_t, B>& ids, tensor<T, B>& y, cache* c = nullptr) const {
        embedding_forward(ids, weight.value, y);
        if (c) c->ids = &ids;
    }
    /// Ids have no gradient; only the table's is accumulated (when trainable).
    void backward(const cache& c, const tensor<T, B>& dy) {
        if (weight.trainable) embedding_backward(*c.ids, dy, weight.grad);
    }
    template <class F>
    void for_each_parameter(F&& f) { f(weight.name, weight); }
};

}  // namespace vila::nn
