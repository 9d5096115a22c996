// vila/io/parameters.hpp — one routine to read a module's parameters from a checkpoint and one
// to collect them for writing. Every model (LLM, vision tower, projector, VLM) loads and saves
// through these, so names, shapes and strays are checked the same way everywhere.
//
// A module is anything with for_each_parameter(f(name, param&)). `key(name)` maps a parameter's
// name to the checkpoint's tensor name (a prefix, LLaVA-HF's renames). LoRA adapter parameters
// are not part of a base checkpoint: both routines skip them (model/lora.hpp saves them).
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

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
