// vila/model/lora.hpp — LoRA adapters on a model, in PEFT's format.
//
//   auto cfg = lora::peft_config::parse("r=8,alpha=16,targets=q_proj+v_proj");
//   lora::attach(model, cfg, seed);          // adapters on the matching linear layers
//   ... train (freeze::lora_adapters) ...
//   lora::save_peft(model, "adapter/");      // adapter_config.json + adapter_model.safetensors
//   lora::load_peft(model, "adapter/");      // attach + read (an adapter PEFT wrote, or ours)
//   lora::merge(model);  lora::detach(model);  // fold into the base weights, drop the adapters
//
// Names follow PEFT: a module is matched by target_modules as PEFT does (a list: the name or
// its last components equal an entry; a string: a full regex match; "all-linear": every linear
// layer but the output head); rank_pattern / alpha_pattern keys match the end of a module name
// (PEFT's get_pattern_key); tensors are "base_model.model.<module>.lora_{A,B}.weight".
// PEFT fields honoured: r, lora_alpha, lora_dropout, target_modules,
// rank_pattern, alpha_pattern, use_rslora, fan_in_fan_out (false for nn.Linear, as PEFT resets
// it), bias (none, all, lora_only), lora_dropout (in training: set_training, as the trainer does). Any other field with a non-default value (use_dora,
// modules_to_save, layers_to_transform, ...) is refused, naming the field.
// A model takes adapters when it has for_each_linear(f(nn::linear&)) (llm::llama; vila::vlm,
// whose adapters go on its LLM, named "llm.model.layers..." as PEFT names VILA's).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/rng.hpp"
#include "../io/json.hpp"
#include "../io/safetensors.hpp"
#include "../nn/linear.hpp"

namespace vila::lora {

struct peft_config {
    static constexpr std::int64_t max_rank = 1 << 16;  // a file's rank sizes A and B: bounded (docs/limits.md)
    index_t r = 8;
    double alpha = 8;
    double dropout = 0;
    bool rslora = false;
    bool fan_in_fan_out = false;
    std::string bias = "none";                 // none | all | lora_only
    std::vector<std::string> target_modules;   // names (suffix match), or
    std::string target_regex;                  // a regex (full match), or
    bool all_linear = false;                   // "all-linear"
    std::map<std::string, index_t> rank_pattern;
    std::map<std::string, double> alpha_pattern;
    std::string base_model;

    /// PEFT's get_pattern_key: the first key k with (.*\.)?(k)$ matching the module name.
    template <class V>
    static const V* pattern_value(const std::map<std::string, V>& pattern, const std::string& module) {
        for (const auto& [k, v] : pattern)
            if (std::regex_match(module, std::regex("(.*\\.)?(" + k + ")"))) return &v;
        return nullptr;
    }
    /// Whether `module` (an HF module name) gets an adapter. `is_head`: the output head.
    bool targets(const std::string& module, bool is_head) const {
        if (all_linear) return !is_head;
        if (!target_regex.empty()) return std::regex_match(module, std::regex(target_regex));
        for (const auto& t : target_modules)
            if (module == t || (module.size() > t.size() && module.compare(module.size() - t.size() - 1, t.size() + 1, "." + t) == 0)) return true;
        return false;
    }
    nn::lora_options options_for(const std::string& module) const {
        nn::lora_options o;
        o.r = r;
        o.alpha = alpha;
        o.rslora = rslora;
        o.dropout = dropout;
        if (const auto* v = pattern_value(rank_pattern, module)) o.r = *v;
        if (const auto* v = pattern_value(alpha_pattern, module)) o.alpha = *v;
        return o;
    }

    /// The command line's form: "r=8,alpha=16,targets=q_proj+v_proj[,rslora][,dropout=0.05]"
    /// (targets=all-linear for every linear layer but the head).
    static peft_config parse(const std::string& spec) {
        peft_config c;
        c.alpha = -1;
        std::stringstream ss(spec);
        for (std::string item; std::getline(ss, item, ',');) {
            const auto eq = item.find('=');
            const std::string k = item.substr(0, eq), v = eq == std::string::npos ? "" : item.substr(eq + 1);
            auto number = [&]() {
                std::size_t used = 0;
                double x = 0;
                try {
                    x = std::stod(v, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (v.empty() || used != v.size() || !std::isfinite(x)) throw config_error("--lora: " + k + " expects a number, got '" + v + "'");
                return x;
            };
            if (k == "r") {
                const double x = number();
                if (x < 1 || x > 65536 || x != std::floor(x)) throw config_error("--lora: r must be a positive integer");
                c.r = index_t(x);
            } else if (k == "alpha") {
                c.alpha = number();
            } else if (k == "dropout") {
                c.dropout = number();
                if (c.dropout < 0 || c.dropout >= 1) throw config_error("--lora: dropout must be in [0, 1)");
            } else if (k == "rslora" && v.empty()) {
                c.rslora = true;
            } else if (k == "targets") {
                if (v == "all-linear") c.all_linear = true;
                else {
                    std::stringstream ts(v);
                    for (std::string t; std::getline(ts, t, '+');)
                        if (!t.empty()) c.target_modules.push_back(t);
                }
            } else {
                throw config_error("--lora: unknown field '" + k + "' (r, alpha, dropout, rslora, targets)");
            }
        }
        if (c.alpha < 0) c.alpha = double(c.r);
        if (!c.all_linear && c.target_modules.empty()) c.target_modules = {"q_proj", "v_proj"};  // PEFT's default for LLaMA
        return c;
    }

    /// Reads PEFT's adapter_config.json: every field through io::config_fields, so a wrong type
    /// or an out-of-range number is a config_error naming the file and the key.
    static peft_config from_json(const nlohmann::json& j, const std::string& file) {
        const io::config_fields f(j, file);
        const std::string type = f.str("peft_type", "LORA");
        if (type != "LORA") f.fail("peft_type", "'" + type + "' is not LORA");
        peft_config c;
        static const std::set<std::string> read = {"r", "lora_alpha", "lora_dropout", "use_rslora", "fan_in_fan_out", "bias",
                                                   "target_modules", "rank_pattern", "alpha_pattern", "base_model_name_or_path"};
        static const std::set<std::string> benign = {"peft_type", "task_type", "auto_mapping", "revision", "inference_mode", "peft_version",
                                                     "megatron_config", "megatron_core", "runtime_config", "qalora_group_size",
                                                     "init_lora_weights", "ensure_weight_tying"};
        for (const auto& [k, v] : j.items()) {
            if (read.count(k)) continue;
            if (k == "init_lora_weights" && !(v.is_boolean() || v == "gaussian"))
                f.fail(k, v.dump() + " changes the base weights (only true, false and \"gaussian\" are supported)");
            if (benign.count(k)) continue;
            const bool is_default = v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) || (v.is_array() && v.empty());
            if (!is_default) f.fail(k, "is " + v.dump() + "; vila supports plain LoRA (not this PEFT feature)");
        }
        auto non_negative = [&](const char* k, double def) {
            const double x = f.number(k, def);
            if (x < 0) f.fail(k, "is " + j.at(k).dump() + ", not a valid number (>= 0)");
            return x;
        };
        c.r = index_t(f.integer("r", 8, 1, max_rank));
        c.alpha = non_negative("lora_alpha", 8);
        c.dropout = non_negative("lora_dropout", 0);
        if (c.dropout >= 1) f.fail("lora_dropout", "is " + j.at("lora_dropout").dump() + ", not a probability below 1");
        c.rslora = f.boolean("use_rslora", false);
        c.fan_in_fan_out = f.boolean("fan_in_fan_out", false);
        c.bias = f.str("bias", "none");
        if (c.bias != "none" && c.bias != "all" && c.bias != "lora_only") f.fail("bias", "'" + c.bias + "' is not none, all or lora_only");
        const auto& t = f.has("target_modules") ? j.at("target_modules") : nlohmann::json();
        if (t.is_string()) {
            const std::string s = t.get<std::string>();
            if (s == "all-linear") c.all_linear = true;
            else c.target_regex = s;
        } else if (t.is_array()) {
            for (const auto& x : t) {
                if (!x.is_string()) f.fail("target_modules", "entries must be strings");
                if (x == "all-linear") c.all_linear = true;
                else c.target_modules.push_back(x.get<std::string>());
            }
        } else {
            f.fail("target_modules", "missing (vila does not guess PEFT's per-architecture defaults)");
        }
        if (f.has("rank_pattern")) {
            const io::config_fields rp = f.object("rank_pattern");
            for (const auto& [k, v] : j.at("rank_pattern").items()) c.rank_pattern[k] = index_t(rp.integer_value(k, v, 1, max_rank));
        }
        if (f.has("alpha_pattern")) {
            const io::config_fields ap = f.object("alpha_pattern");
            for (const auto& [k, v] : j.at("alpha_pattern").items()) {
                if (!v.is_number() || !std::isfinite(v.get<double>())) ap.fail(k, "expected a finite number, got " + v.dump());
                c.alpha_pattern[k] = v.get<double>();
            }
        }
        c.base_model = f.str("base_model_name_or_path", "");
        return c;
    }

    nlohmann::json to_json() const {
        nlohmann::json j;
        j["peft_type"] = "LORA";
        j["task_type"] = "CAUSAL_LM";
        j["r"] = r;
        j["lora_alpha"] = alpha;
        j["lora_dropout"] = dropout;
        j["use_rslora"] = rslora;
        j["fan_in_fan_out"] = false;
        j["bias"] = bias;
        if (all_linear) j["target_modules"] = "all-linear";
        else if (!target_regex.empty()) j["target_modules"] = target_regex;
        else j["target_modules"] = target_modules;
        j["rank_pattern"] = rank_pattern;
        j["alpha_pattern"] = alpha_pattern;
        j["base_model_name_or_path"] = base_model.empty() ? nlohmann::json() : nlohmann::json(base_model);
        j["init_lora_weights"] = true;
        j["inference_mode"] = true;
        j["modules_to_save"] = nullptr;
        j["use_dora"] = false;
        return j;
    }
};

inline const char* peft_prefix = "base_model.model.";

namespace detail {
template <class M, class = void>
struct has_module_prefix : std::false_type {};
template <class M>
struct has_module_prefix<M, std::void_t<decltype(M::peft_module_prefix())>> : std::true_type {};
}  // namespace detail
/// Where a model's linear layers sit inside what PEFT wraps: "" for a text LLM, "llm." for a
/// VILA-layout VLM (PEFT wraps the whole LlavaLlamaModel, whose LLM is its `llm` member).
template <class Model>
std::string module_prefix(const Model&) {
    if constexpr (detail::has_module_prefix<Model>::value) return Model::peft_module_prefix();
    else return "";
}

/// Adds adapters to every linear layer `cfg` targets (PEFT's initialisation from `seed`);
/// returns how many. Throws when nothing matches (a typo in targets must not train nothing).
template <class Model>
index_t attach(Model& model, const peft_config& cfg, std::uint64_t seed = 0) {
    rng gen(seed, 0x10A);
    index_t n = 0;
    const std::string prefix = module_prefix(model);
    model.for_each_linear([&](auto& layer, bool is_head) {
        const std::string name = prefix + layer.module_name();
        if (!cfg.targets(name, is_head)) return;
        layer.attach_lora(cfg.options_for(name), gen);
        ++n;
    });
    if (n == 0) throw config_error("vila::lora: no linear layer matches the LoRA targets");
    return n;
}

/// Training mode (dropout on) for forward number `step`, or inference (training false).
template <class Model>
void set_training(Model& model, bool training, std::uint64_t step = 0) {
    model.for_each_linear([&](auto& layer, bool) {
        if (!layer.lora) return;
        layer.lora->training = training;
        layer.lora->dropout_step = step;
    });
}

/// Removes every adapter (merged or not: a merged adapter's update stays in the weights).
template <class Model>
void detach(Model& model) {
    model.for_each_linear([](auto& layer, bool) { layer.lora.reset(); });
}
template <class Model>
void merge(Model& model) {
    model.for_each_linear([](auto& layer, bool) { layer.merge_lora(); });
}
template <class Model>
void unmerge(Model& model) {
    model.for_each_linear([](auto& layer, bool) { layer.unmerge_lora(); });
}
template <class Model>
index_t count(Model& model) {
    index_t n = 0;
    model.for_each_linear([&](auto& layer, bool) { n += layer.lora ? 1 : 0; });
    return n;
}

/// Writes adapter_config.json and adapter_model.safetensors (F32) into `dir`: every adapter's
/// A and B under PEFT's names, and biases as `cfg.bias` says.
template <class Model>
void save_peft(Model& model, const std::filesystem::path& dir, const peft_config& cfg) {
    std::map<std::string, io::tensor_to_write> out;
    auto put = [&](const std::string& key, const auto& t) {
        const auto h = t.to_host();
        out[key] = {t.shape(), std::vector<float>(h.begin(), h.end())};
    };
    const std::string prefix = module_prefix(model);
    model.for_each_linear([&](auto& layer, bool) {
        const std::string key = peft_prefix + prefix + layer.module_name();
        if (layer.lora) {
            if (layer.lora->merged) throw error("vila::lora: " + layer.module_name() + " is merged; unmerge before saving the adapter");
            put(key + ".lora_A.weight", layer.lora->A.value);
            put(key + ".lora_B.weight", layer.lora->Bm.value);
        }
        if (layer.has_bias() && (cfg.bias == "all" || (cfg.bias == "lora_only" && layer.lora))) put(key + ".bias", layer.bias.value);
    });
    if (out.empty()) throw error("vila::lora: the model has no adapter to save");
    io::save_safetensors(dir / "adapter_model.safetensors", out, {{"format", "pt"}});
    io::write_json(dir / "adapter_config.json", cfg.to_json());
}

/// Attaches and reads the adapter in `dir` (PEFT's files). Every tensor must be used.
template <class Model>
peft_config load_peft(Model& model, const std::filesystem::path& dir) {
    const auto cfg_file = dir / "adapter_config.json";
    const peft_config cfg = peft_config::from_json(io::read_json(cfg_file), cfg_file.string());
    const std::filesystem::path weights = dir / "adapter_model.safetensors";
    if (!std::filesystem::exists(weights))
        throw io_error(dir.string() + ": no adapter_model.safetensors (a PyTorch adapter_model.bin is not read: convert it to safetensors)");
    const io::safetensors_file f(weights);
    const std::string where = weights.string();
    std::set<std::string> used;
    auto read = [&](const std::string& key, auto& t) {
        if (!f.contains(key)) throw format_error(where + ": missing tensor '" + key + "'");
        if (f.info(key).shape != t.shape())
            throw format_error(where + ": tensor '" + key + "' has shape " + to_string(f.info(key).shape) + ", the adapter config implies " +
                               to_string(t.shape()));
        f.read(key, t);
        used.insert(key);
    };
    rng unused(0);
    index_t n = 0;
    const std::string prefix = module_prefix(model);
    model.for_each_linear([&](auto& layer, bool is_head) {
        const std::string name = prefix + layer.module_name(), key = peft_prefix + name;
        const bool has_a = f.contains(key + ".lora_A.weight");
        if (!cfg.targets(name, is_head) && !has_a) return;
        auto o = cfg.options_for(name);
        if (has_a) o.r = f.info(key + ".lora_A.weight").shape.at(0);  // the file's rank wins (PEFT checks the pattern too)
        layer.attach_lora(o, unused);
        read(key + ".lora_A.weight", layer.lora->A.value);
        read(key + ".lora_B.weight", layer.lora->Bm.value);
        if (layer.has_bias() && f.contains(key + ".bias")) read(key + ".bias", layer.bias.value);
        ++n;
    });
    for (const auto& [name, info] : f.tensors())
        if (!used.count(name)) throw format_error(where + ": tensor '" + name + "' matches no linear layer of this model");
    if (n == 0) throw format_error(where + ": the adapter matches no layer of this model");
    return cfg;
}

/// The PEFT config that describes the adapters attached to `model` (for saving them): the most
/// common rank and alpha, the others as rank/alpha patterns, targets by module suffix.
template <class Model>
peft_config config_of(Model& model) {
    std::map<index_t, int> ranks;
    std::map<double, int> alphas;
    std::set<std::string> targets;
    std::vector<std::pair<std::string, nn::lora_options>> all;
    bool rslora = false;
    double dropout = 0;
    const std::string prefix = module_prefix(model);
    model.for_each_linear([&](auto& layer, bool) {
        if (!layer.lora) return;
        const auto& o = layer.lora->options;
        ++ranks[o.r];
        ++alphas[o.alpha];
        rslora = o.rslora;
        dropout = o.dropout;
        const std::string name = prefix + layer.module_name();
        targets.insert(name.substr(name.rfind('.') + 1));
        all.emplace_back(name, o);
    });
    peft_config c;
    auto most = [](const auto& m) {
        auto best = m.begin();
        for (auto it = m.begin(); it != m.end(); ++it)
            if (it->second > best->second) best = it;
        return best->first;
    };
    if (all.empty()) throw error("vila::lora: the model has no adapter");
    c.r = most(ranks);
    c.alpha = most(alphas);
    c.rslora = rslora;
    c.dropout = dropout;
    c.target_modules.assign(targets.begin(), targets.end());
    for (const auto& [name, o] : all) {
        if (o.r != c.r) c.rank_pattern[name] = o.r;
        if (o.alpha != c.alpha) c.alpha_pattern[name] = o.alpha;
    }
    return c;
}

}  // namespace vila::lora
