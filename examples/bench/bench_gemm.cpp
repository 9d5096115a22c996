// bench_gemm — GFLOP/s of the GEMM behind vila::nn::linear against OpenBLAS sgemm, same run.
//
// For each transformer shape and thread count, times C[M,N] = A[M,K] B[K,N] through
// vila::backend::cpu::gemm (Eigen; with EIGEN_USE_BLAS it forwards to BLAS) and through
// cblas_sgemm, alternating the two, and prints the median GFLOP/s and the ratio.
//
//   OMP_WAIT_POLICY=PASSIVE env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./bench_gemm [--seconds S] [--markdown]
//
// Why those settings: two spinning thread pools (OpenMP and OpenBLAS's pthreads) on two cores
// steal each other's time, and OPENBLAS_CORETYPE=Haswell (set on some machines for old
// OpenBLAS bugs) halves OpenBLAS's speed on AVX-512 cores. See docs/performance.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <cblas-openblas.h>
#include <vila/vila.hpp>

#include "median_time.hpp"

extern "C" void openblas_set_num_threads(int);

namespace {
struct shape {
    vila::index_t M, K, N;
};
}  // namespace

int main(int argc, char** argv) {
    double seconds = 1.0;
    bool markdown = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
        else if (!std::strcmp(argv[i], "--markdown")) markdown = true;
        else {
            std::fprintf(stderr, "usage: %s [--seconds S] [--markdown]\n", argv[0]);
            return 2;
        }
    }
    vila::tune_allocator();
    const std::vector<shape> shapes = {{2048, 512, 2048}, {2048, 2048, 512}, {256, 4096, 4096}};
    std::printf("vila %s GEMM benchmark, variant %s, float32, median of repeated runs\n", vila::version(),
                VILA_BENCH_VARIANT);
    if (markdown)
        std::printf("| M | K | N | threads | vila (%s) GFLOP/s | OpenBLAS GFLOP/s | ratio |\n|---|---|---|---|---|---|---|\n",
                    VILA_BENCH_VARIANT);
    else
        std::printf("%6s %6s %6s %8s %14s %14s %7s\n", "M", "K", "N", "threads", "vila GFLOP/s", "OpenBLAS", "ratio");
    for (int threads : {1, 2}) {
        vila::set_num_threads(threads);
        openblas_set_num_threads(threads);
        for (const auto& s : shapes) {
            vila::tensor<float> a({s.M, s.K}), b({s.K, s.N}), c({s.M, s.N});
            vila::rng gen(1);
            gen.fill_uniform(a, -1, 1);
            gen.fill_uniform(b, -1, 1);
            const double flop = 2.0 * double(s.M) * double(s.N) * double(s.K);
            const double t_vila = bench::median_seconds([&] {
                vila::backend::cpu::gemm(false, false, s.M, s.N, s.K, 1.0f, a.data(), s.K, b.data(), s.N, 0.0f,
                                         c.data(), s.N);
            }, seconds);
            const double t_blas = bench::median_seconds([&] {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.M), int(s.N), int(s.K), 1.0f, a.data(),
                            int(s.K), b.data(), int(s.N), 0.0f, c.data(), int(s.N));
            }, seconds);
            const double g_vila = flop / t_vila * 1e-9, g_blas = flop / t_blas * 1e-9;
            if (markdown)
                std::printf("| %lld | %lld | %lld | %d | %.1f | %.1f | %.2f |\n", (long long)s.M, (long long)s.K,
                            (long long)s.N, threads, g_vila, g_blas, g_vila / g_blas);
            else
                std::printf("%6lld %6lld %6lld %8d %14.1f %14.1f %7.2f\n", (long long)s.M, (long long)s.K,
                            (long long)s.N, threads, g_vila, g_blas, g_vila / g_blas);
            std::fflush(stdout);
        }
    }
    return 0;
}
