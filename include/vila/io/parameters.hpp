// vila/io/parameters.hpp — one routine to read a module's parameters from a checkpoint and one
// to collect them for writing. Every model (LLM, vision tower, projector, VLM) loads and saves
// through these, so names, shapes and strays are checked the same way everywhere.
//
// A module is anything with for_each_parameter(f(name, param&)). `key(name)` maps a parameter's
// name to the checkpoint's tensor name (a prefix, LLaVA-HF's renames). LoRA adapter parameters
// are not part of a base checkpoint: both routines skip them (model/lora.hpp saves them).
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "../core/param.hpp"
#include "../nn/lora.hpp"
#include "safetensors.hpp"

namespace vila::io {

using key_map = std::function<std::string(const std::string&)>;

/// Reads every parameter of `module` from `ck` under key(name), checking presence and shape
/// (format_error naming `where` and the tensor); records the keys read in `used`.
template <class Module>
void read_parameters(Module& module, const safetensors_checkpoint& ck, const std::string& where, const key_map& key,
                     std::set<std::string>* used = nullptr) {
    module.for_each_parameter([&](const std::string& name, auto& p) {
        if (nn::is_lora_name(name)) return;
        const std::string k = key ? key(name) : name;
        if (!ck.contains(k)) throw format_error(where + ": missing tensor '" + k + "'");
        if (ck.info(k).shape != p.value.shape())
            throw format_error(where + ": tensor '" + k + "' has shape " + to_string(ck.info(k).shape) + ", config.json implies " +
                               to_string(p.value.shape()));
        ck.read(k, p.value);
        if (used) used->insert(k);
    });
}

/// Throws format_error for the first tensor of `ck` under `prefix` that is not in `used` and
/// that `allowed` (when given) does not accept: a checkpoint must not carry weights we ignore.
/// Refuses a checkpoint that holds fewer weights under `prefix` than a config implies
/// (`needed`, a lower bound), before the model is allocated: a 160-byte config.json beside an
/// empty or small checkpoint is an error in milliseconds, not gigabytes of zeros first.
inline void check_holds(const safetensors_checkpoint& ck, const std::string& prefix, double needed, const std::string& where) {
    double held = 0;
    for (const auto& n : ck.names())
        if (n.rfind(prefix, 0) == 0) held += double(numel(ck.info(n).shape));
    if (needed > held)
        throw format_error(where + ": config.json implies at least " + std::to_string((long long)needed) + " weights" +
                           (prefix.empty() ? std::string() : " under '" + prefix + "'") + " but the checkpoint holds " +
                           std::to_string((long long)held) + " (refused before allocating)");
}

/// The most bytes of weights a loader allocates from one checkpoint; 0 (the default) means
/// the machine's physical memory. A config.json implying more is refused before allocating,
/// with the numbers, instead of the machine swapping or the process being killed. Also set by
/// the environment variable VILA_MAX_WEIGHT_BYTES.
inline double max_weight_bytes = 0;

inline double physical_memory_bytes() {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : 0;
}
inline double weight_bytes_limit() {
    if (max_weight_bytes > 0) return max_weight_bytes;
    if (const char* env = std::getenv("VILA_MAX_WEIGHT_BYTES")) {
        char* end = nullptr;
        const double x = std::strtod(env, &end);
        if (end == env || *end != 0 || !(x > 0) || !std::isfinite(x))
            throw config_error(std::string("VILA_MAX_WEIGHT_BYTES='") + env + "' is not a positive number of bytes");
        return x;
    }
    return physical_memory_bytes();
}

/// Refuses a model whose weights (`values` of `value_bytes` each) exceed weight_bytes_limit().
inline void check_weight_memory(double values, std::size_t value_bytes, const std::string& where) {
    const double need = values * double(value_bytes), limit = weight_bytes_limit();
    if (limit > 0 && need > limit) {
        char msg[256];
        std::snprintf(msg, sizeof msg, "config.json implies %.3g weights, %.2f GB as %zu-byte values, above the limit of %.2f GB", values,
                      need / 1e9, value_bytes, limit / 1e9);
        throw config_error(where + ": " + msg + (max_weight_bytes > 0 || std::getenv("VILA_MAX_WEIGHT_BYTES") ? std::string(" (io::max_weight_bytes / VILA_MAX_WEIGHT_BYTES)")
                                                                                                    : std::string(" (this machine's memory; raise it with VILA_MAX_WEIGHT_BYTES)")) +
                           " (refused before allocating)");
    }
}

/// Checks, before a model is allocated, that `ck` holds each tensor visit_shapes(f) names (under
/// `prefix`) with that shape and a floating-point dtype: the first missing or mismatched tensor
/// is a format_error naming `where`. visit_shapes stops at the first failure, so the work is
/// bounded by the checkpoint, not by the config.
template <class Visit>
void check_parameter_shapes(const safetensors_checkpoint& ck, const std::string& prefix, const std::string& where, Visit&& visit_shapes) {
    visit_shapes([&](const std::string& name, const shape_t& shape) {
        const std::string k = prefix + name;
        if (!ck.contains(k)) throw format_error(where + ": missing tensor '" + k + "' (checked before allocating)");
        const auto& t = ck.info(k);
        if (t.shape != shape)
            throw format_error(where + ": tensor '" + k + "' has shape " + to_string(t.shape) + ", config.json implies " + to_string(shape));
        if (t.type != dtype::f32 && t.type != dtype::f16 && t.type != dtype::bf16 && t.type != dtype::f64)
            throw format_error(where + ": tensor '" + k + "' has dtype " + dtype_name(t.type) + ", expected F32, F16, BF16 or F64");
        return true;
    });
}

inline void check_no_strays(const safetensors_checkpoint& ck, const std::string& where, const std::set<std::string>& used,
                            const std::string& prefix, const std::function<bool(const std::string&)>& allowed,
                            const std::string& what) {
    for (const auto& n : ck.names())
        if (n.rfind(prefix, 0) == 0 && !used.count(n) && !(allowed && allowed(n)))
            throw format_error(where + ": unexpected tensor '" + n + "'" + (what.empty() ? "" : " (" + what + ")"));
}

/// Adds every parameter of `module` to `out` under key(name) (host copies as float).
template <class Module>
void collect_parameters(Module& module, std::map<std::string, tensor_to_write>& out, const key_map& key = nullptr) {
    module.for_each_parameter([&](const std::string& name, auto& p) {
        if (nn::is_lora_name(name)) return;
        const auto h = p.value.to_host();
        out[key ? key(name) : name] = {p.value.shape(), std::vector<float>(h.begin(), h.end())};
    });
}

}  // namespace vila::io
