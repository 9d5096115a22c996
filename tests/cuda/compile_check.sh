#!/usr/bin/env bash
# nvcc compile-only check of the CUDA translation units (no GPU needed).
#   bash tests/cuda/compile_check.sh [path/to/nvcc] [output-binary]
# With a GPU, pass an output path to link and then run the binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
NVCC=${1:-nvcc}
out=${2:-}
flags=(-std=c++17 -O2 -arch=sm_90 --expt-relaxed-constexpr -diag-suppress=20012 -Xcompiler=-fopenmp
       -I"$root/include" -isystem /usr/include/eigen3  # 20012: Eigen 3.4 marks defaulted members __host__ __device__
       -DVILA_USE_THRUST -DVILA_USE_CUBLAS -DTHRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_CUDA)
if [ -z "$out" ]; then
  "$NVCC" "${flags[@]}" -c "$here/kernels.cu" -o /tmp/vila_cuda_kernels.o
  echo "nvcc compile-only check: OK ($("$NVCC" --version | tail -1))"
else
  "$NVCC" "${flags[@]}" "$here/kernels.cu" -o "$out" -lcublas -ljpeg -lpng -lgif
  echo "built $out"
fi
