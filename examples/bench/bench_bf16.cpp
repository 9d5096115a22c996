// bench_bf16 — what bf16 could bring on this CPU, measured before building it (issue: CPU speed).
//
// 1. The FMA peaks, fp32 (vfmadd231ps) and bf16 (vdpbf16ps, AVX512-BF16), per thread count:
//    16 independent accumulator chains in registers, no memory traffic.
// 2. The GEMMs of a decoder training step (the benchmark config: 8 x 256 tokens, width 512,
//    SwiGLU 1376, vocab 32000) in nn::linear's layout, y[M,N] = x[M,K] W[N,K]^T: vila's fp32
//    GEMM (vila::backend::cpu::gemm, as the programs are built: OpenBLAS when found) against
//    oneDNN's bf16 matmul (bf16 operands, fp32 output), each with its share of the peaks.
// Debian's OpenBLAS 0.3.21 is built without sbgemm (no BUILD_BFLOAT16: `nm -D` lists no
// sbgemm symbol), so oneDNN (libdnnl-dev, its OpenMP build shares vila's pool) is the packaged
// bf16 GEMM to measure; docs/performance.md has the figures and the reading.
//   OMP_WAIT_POLICY=PASSIVE env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./bench_bf16 [--seconds S]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <vila/vila.hpp>

#include "median_time.hpp"

namespace {

constexpr long probe_iters = 100'000'000;  // ~0.4 s per probe at full speed

// The sum of a vector's lanes through memory (g++ 12's _mm512_reduce_add_ps trips
// -Wuninitialized inside its own header, GCC bug 105593).
__attribute__((target("avx512f"))) float lane_total(__m512 v) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, v);
    float t = 0;
    for (float l : lanes) t += l;
    return t;
}

/// FLOP of one thread's fp32 probe: 16 chains x 16 lanes x 2 (multiply, add) per iteration.
__attribute__((target("avx512f"))) float fma_probe_fp32() {
    __m512 acc[16];
    for (int k = 0; k < 16; ++k) acc[k] = _mm512_set1_ps(float(k) * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < probe_iters; ++i)
        for (int k = 0; k < 16; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < 16; ++k) s = _mm512_add_ps(s, acc[k]);
    return lane_total(s);
}

/// FLOP of one thread's bf16 probe: 16 chains x 32 bf16 pairs x 2 per iteration.
__attribute__((target("avx512f,avx512bf16"))) float fma_probe_bf16() {
    __m512 acc[16];
    for (int k = 0; k < 16; ++k) acc[k] = _mm512_set1_ps(float(k) * 1e-3f);
    const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
    for (long i = 0; i < probe_iters; ++i)
        for (int k = 0; k < 16; ++k) acc[k] = _mm512_dpbf16_ps(acc[k], a, b);
    __m512 s = acc[0];
    for (int k = 1; k < 16; ++k) s = _mm512_add_ps(s, acc[k]);
    return lane_total(s);
}

/// GFLOP/s of `threads` threads each running `probe` (flop_per_iter per iteration), best of 3
/// (the first run may meet a core still clocking up).
template <class Probe>
double peak_gflops(int threads, Probe probe, double flop_per_iter) {
    double best = 0;
    for (int run = 0; run < 3; ++run) {
        volatile float sink = 0;
        const auto a = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
        {
            const float r = probe();
#pragma omp critical
            sink = sink + r;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
        best = std::max(best, double(threads) * double(probe_iters) * flop_per_iter / s * 1e-9);
    }
    return best;
}

std::uint16_t to_bf16(float f) {  // round to nearest even
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return std::uint16_t(u >> 16);
}

struct gemm_shape {
    const char* what;
    long M, K, N;
};

}  // namespace

int main(int argc, char** argv) {
    double seconds = 1.0;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = std::atof(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    vila::tune_allocator();
    const bool has_avx512 = __builtin_cpu_supports("avx512f"), has_bf16 = has_avx512 && __builtin_cpu_supports("avx512bf16");
    std::printf("vila %s bf16 probe (fp32 GEMM: %s)\n", vila::version(), VILA_BENCH_GEMM);

    double peak32[3] = {0, 0, 0}, peak16[3] = {0, 0, 0};
    std::printf("\n| threads | fp32 FMA peak GFLOP/s | bf16 dot-product peak GFLOP/s |\n|---|---|---|\n");
    for (int threads : {1, 2}) {
        if (has_avx512) peak32[threads] = peak_gflops(threads, fma_probe_fp32, 16.0 * 16 * 2);
        if (has_bf16) peak16[threads] = peak_gflops(threads, fma_probe_bf16, 16.0 * 32 * 2);
        std::printf("| %d | %.0f | %s |\n", threads, peak32[threads], has_bf16 ? std::to_string(int(peak16[threads] + 0.5)).c_str() : "no AVX512-BF16");
    }

    const std::vector<gemm_shape> shapes = {{"q/k/v/o_proj", 2048, 512, 512},
                                            {"gate/up_proj", 2048, 512, 1376},
                                            {"down_proj", 2048, 1376, 512},
                                            {"lm_head", 2048, 512, 32000}};
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream st(eng);
    std::printf("\n| GEMM (M, K, N) | threads | vila fp32 GFLOP/s (%% fp32 peak) | oneDNN bf16 GFLOP/s (%% bf16 peak) | bf16 / fp32 |\n"
                "|---|---|---|---|---|\n");
    for (int threads : {1, 2}) {
        vila::set_num_threads(threads);
        for (const auto& s : shapes) {
            vila::tensor<float> x({s.M, s.K}), w({s.N, s.K}), y({s.M, s.N});
            vila::rng gen(1);
            gen.fill_uniform(x, -1, 1);
            gen.fill_uniform(w, -1, 1);
            const double flop = 2.0 * double(s.M) * double(s.N) * double(s.K);
            const double t32 = bench::median_seconds([&] {
                vila::backend::cpu::gemm(false, true, s.M, s.N, s.K, 1.0f, x.data(), s.K, w.data(), s.K, 0.0f, y.data(), s.N);
            }, seconds);
            std::vector<std::uint16_t> xb(std::size_t(s.M * s.K)), wb(std::size_t(s.N * s.K));
            std::transform(x.data(), x.data() + x.size(), xb.begin(), to_bf16);
            std::transform(w.data(), w.data() + w.size(), wb.begin(), to_bf16);
            using tag = dnnl::memory::format_tag;
            using dt = dnnl::memory::data_type;
            const dnnl::memory::desc xd({s.M, s.K}, dt::bf16, tag::ab), wd({s.K, s.N}, dt::bf16, tag::ba),
                yd({s.M, s.N}, dt::f32, tag::ab);  // W^T as a [K, N] view of W [N, K]: format "ba"
            const dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(xd, wd, yd), eng));
            dnnl::memory xm(xd, eng, xb.data()), wm(wd, eng, wb.data()), ym(yd, eng, y.data());
            const double t16 = bench::median_seconds([&] {
                mm.execute(st, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
                st.wait();
            }, seconds);
            const double g32 = flop / t32 * 1e-9, g16 = flop / t16 * 1e-9;
            std::printf("| %s (%ld, %ld, %ld) | %d | %.0f (%.0f%%) | %.0f (%s) | %.2f |\n", s.what, s.M, s.K, s.N, threads, g32,
                        peak32[threads] > 0 ? 100 * g32 / peak32[threads] : 0.0, g16,
                        has_bf16 ? (std::to_string(int(100 * g16 / peak16[threads] + 0.5)) + "%").c_str() : "n/a", g16 / g32);
            std::fflush(stdout);
        }
    }
    return 0;
}
