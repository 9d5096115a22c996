// vila/backend/cuda/check.hpp — turn CUDA status codes into vila::cuda_error (nvcc only).
#pragma once
#include <string>

#include <cuda_runtime.h>

#include "../../error.hpp"

namespace vila::backend::cuda {

inline void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess)
        throw cuda_error(std::string("vila: ") + what + " failed: " + cudaGetErrorString(status));
}

}  // namespace vila::backend::cuda
