// vila/core/eigen_map.hpp — Eigen views over CPU tensors (no copies).
//
// A tensor of shape [d0, ..., dk] is viewed as a row-major matrix [d0*...*d(k-1), dk]: the
// layout every linear layer uses (tokens x features).
#pragma once
#include <Eigen/Core>

#include "tensor.hpp"

namespace vila {

template <class T>
using row_matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Rows x last-dimension view of a CPU tensor's memory.
template <class T>
Eigen::Map<row_matrix<T>> as_matrix(tensor<T, backend::cpu>& t) {
    const index_t cols = t.rank() ? t.dim(-1) : 1;
    return {t.data(), cols ? t.size() / cols : 0, cols};
}
template <class T>
Eigen::Map<const row_matrix<T>> as_matrix(const tensor<T, backend::cpu>& t) {
    const index_t cols = t.rank() ? t.dim(-1) : 1;
    return {t.data(), cols ? t.size() / cols : 0, cols};
}

}  // namespace vila
