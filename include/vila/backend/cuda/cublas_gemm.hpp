// vila/backend/cuda/cublas_gemm.hpp — row-major GEMM on cuBLAS (nvcc only, VILA_USE_CUBLAS).
//
// cuBLAS is column-major: a row-major C[M,N] is a column-major C^T[N,M], and
// C^T = op(B)^T op(A)^T, so we call cuBLAS with the operands swapped and M/N exchanged.
#pragma once
#include <string>
#include <type_traits>

#include <cublas_v2.h>

#include "../../core/shape.hpp"
#include "check.hpp"

namespace vila::backend::cuda {

inline void check(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw cuda_error(std::string("vila: ") + what + " failed with cuBLAS status " +
                         std::to_string(static_cast<int>(status)));
}

/// One handle per host thread, created on first use.
inline cublasHandle_t handle() {
    thread_local struct holder {
        cublasHandle_t h = nullptr;
        holder() { check(cublasCreate(&h), "cublasCreate"); }
        ~holder() { if (h) cublasDestroy(h); }
    } holder;
    return holder.h;
}

template <class T>
void gemm(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A, index_t lda,
          const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "vila: cuBLAS GEMM is provided for float and double");
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if constexpr (std::is_same<T, float>::value)
        check(cublasSgemm(handle(), opb, opa, int(N), int(M), int(K), &alpha, B, int(ldb), A, int(lda),
                          &beta, C, int(ldc)), "cublasSgemm");
    else
        check(cublasDgemm(handle(), opb, opa, int(N), int(M), int(K), &alpha, B, int(ldb), A, int(lda),
                          &beta, C, int(ldc)), "cublasDgemm");
}

}  // namespace vila::backend::cuda
