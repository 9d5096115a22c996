// vila/backend/bf16.hpp — bf16 mixed precision for the CPU backend's matrix products.
//
// What `precision::bf16` means (the recipe of PyTorch's CPU autocast): the operands of every
// GEMM through backend::cpu::gemm are rounded to bf16 (round to nearest even), products are
// accumulated in fp32 and written to fp32 outputs. Weights, gradients and optimizer state stay
// fp32 (master weights); norms, softmax, attention and the loss stay fp32. Batch-1 products
// (decoding's GEMVs) stay fp32: they are bound by reading fp32 weights, which a bf16 copy made
// per call would only add to.
//
// The kernel: oneDNN's bf16 matmul (Debian's libdnnl-dev; its brgemm kernels use AVX512-BF16's
// vdpbf16ps and reached 84-94% of that peak here, 1.9-2.2x our fp32 GEMM; Debian's OpenBLAS has
// no sbgemm, docs/performance.md) when the program is built with VILA_WITH_DNNL (CMake target
// vila::dnnl) and the CPU has AVX512-BF16. Elsewhere, the same numbers by emulation: operands
// rounded to bf16 values held in fp32, then the fp32 GEMM (equal to oneDNN's up to the order
// of the fp32 sums; no faster than fp32, but the same model and the same tests run everywhere).
//
// The setting is process-wide (a run's choice: `--precision bf16` in the programs).
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../core/shape.hpp"
#include "../error.hpp"

#if defined(VILA_WITH_DNNL)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace vila {

enum class precision { fp32, bf16 };

inline const char* to_string(precision p) noexcept { return p == precision::bf16 ? "bf16" : "fp32"; }
inline precision parse_precision(const std::string& s) {
    if (s == "fp32" || s == "float32") return precision::fp32;
    if (s == "bf16" || s == "bfloat16") return precision::bf16;
    throw error("vila: unknown precision '" + s + "' (expected fp32 or bf16)");
}

namespace backend::bf16 {

/// Which bf16 kernel runs: auto (oneDNN where it can, else emulation) or one forced (tests).
enum class kernel { automatic, onednn, emulated };

namespace detail {
inline std::atomic<precision>& precision_ref() noexcept {
    static std::atomic<precision> p{precision::fp32};
    return p;
}
inline std::atomic<kernel>& kernel_ref() noexcept {
    static std::atomic<kernel> k{kernel::automatic};
    return k;
}
}  // namespace detail

/// The precision of the CPU backend's float GEMMs, for the whole process.
inline precision matmul_precision() noexcept { return detail::precision_ref().load(std::memory_order_relaxed); }
inline void set_matmul_precision(precision p) noexcept { detail::precision_ref().store(p, std::memory_order_relaxed); }

/// True when this build has oneDNN and this CPU runs its bf16 kernels natively.
inline bool onednn_available() noexcept {
#if defined(VILA_WITH_DNNL) && (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(_M_X64))
    static const bool ok = __builtin_cpu_supports("avx512bf16");
    return ok;
#else
    return false;
#endif
}
inline void set_kernel(kernel k) {
    if (k == kernel::onednn && !onednn_available())
        throw error("vila: the oneDNN bf16 kernel is not available (built without VILA_WITH_DNNL, or the CPU lacks AVX512-BF16)");
    detail::kernel_ref().store(k, std::memory_order_relaxed);
}
/// The kernel the next bf16 GEMM uses.
inline kernel active_kernel() noexcept {
    const kernel k = detail::kernel_ref().load(std::memory_order_relaxed);
    if (k == kernel::automatic) return onednn_available() ? kernel::onednn : kernel::emulated;
    return k;
}
inline const char* to_string(kernel k) noexcept {
    return k == kernel::onednn ? "oneDNN (AVX512-BF16)" : k == kernel::emulated ? "emulated (bf16-rounded operands, fp32 GEMM)" : "auto";
}

/// Sets the precision for a scope and restores the previous one on exit.
class precision_scope {
public:
    explicit precision_scope(precision p) : saved_(matmul_precision()) { set_matmul_precision(p); }
    ~precision_scope() { set_matmul_precision(saved_); }
    precision_scope(const precision_scope&) = delete;
    precision_scope& operator=(const precision_scope&) = delete;

private:
    precision saved_;
};

/// fp32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN), as PyTorch and oneDNN round.
inline std::uint16_t to_bits(float x) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? std::uint16_t((u >> 16) | 0x40u) : std::uint16_t(rounded);
}
inline float from_bits(std::uint16_t b) noexcept {
    const std::uint32_t u = std::uint32_t(b) << 16;
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
}
/// x rounded to the nearest bf16 value, held in fp32.
inline float round(float x) noexcept { return from_bits(to_bits(x)); }

namespace detail {
/// dst[r * cols + c] = bits(src[r * ld + c]), or of src[c * ld + r] when `transpose` (dst is
/// then the transpose of the stored matrix): packs a GEMM operand for the bf16 kernel.
inline void pack_bits(const float* src, index_t rows, index_t cols, index_t ld, bool transpose, std::uint16_t* dst) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 16))
#endif
    for (index_t r = 0; r < rows; ++r) {
        std::uint16_t* d = dst + r * cols;
        if (!transpose) {
            const float* s = src + r * ld;
            for (index_t c = 0; c < cols; ++c) d[c] = to_bits(s[c]);
        } else {
            for (index_t c = 0; c < cols; ++c) d[c] = to_bits(src[c * ld + r]);
        }
    }
}
/// dst = src rounded to bf16 values (fp32 storage, packed with leading dimension `cols`).
inline void pack_rounded(const float* src, index_t rows, index_t cols, index_t ld, float* dst) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 16))
#endif
    for (index_t r = 0; r < rows; ++r)
        for (index_t c = 0; c < cols; ++c) dst[r * cols + c] = round(src[r * ld + c]);
}
}  // namespace detail

#if defined(VILA_WITH_DNNL)
/// Row-major C[M,N] = alpha op(A) op(B) + beta C with bf16 operands (rounded from the fp32 ones
/// here) and fp32 accumulation, through oneDNN's matmul. Each thread keeps its own stream and
/// packing buffers; oneDNN caches the compiled primitives by shape.
inline void onednn_gemm(bool ta, bool tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
                        const float* B, index_t ldb, float beta, float* C, index_t ldc) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    thread_local dnnl::stream stream(engine);
    thread_local std::vector<std::uint16_t> a_bits, b_bits;
    a_bits.resize(static_cast<std::size_t>(M * K));
    b_bits.resize(static_cast<std::size_t>(K * N));
    // op(A) [M, K]: stored [K, M] when transposed (layout "ba": packing as stored reads
    // contiguous rows; a transposing copy of the weight gradients' dy was 13% of a bf16 step)
    if (ta) detail::pack_bits(A, K, M, lda, false, a_bits.data());
    else detail::pack_bits(A, M, K, lda, false, a_bits.data());
    // op(B) [K, N]: stored [N, K] when transposed (oneDNN's "ba" weights layout), else [K, N]
    if (tb) detail::pack_bits(B, N, K, ldb, false, b_bits.data());
    else detail::pack_bits(B, K, N, ldb, false, b_bits.data());
    const dnnl::memory::desc ad({M, K}, dt::bf16, ta ? tag::ba : tag::ab), bd({K, N}, dt::bf16, tb ? tag::ba : tag::ab),
        cd({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (beta != 0.0f) {
        dnnl::post_ops po;
        po.append_sum(beta);
        attr.set_post_ops(po);
    }
    const dnnl::matmul mm(dnnl::matmul::primitive_desc(dnnl::matmul::desc(ad, bd, cd), attr, engine));
    dnnl::memory am(ad, engine, a_bits.data()), bm(bd, engine, b_bits.data()), cm(cd, engine, C);
    mm.execute(stream, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
    stream.wait();
}
#endif

}  // namespace backend::bf16
}  // namespace vila
