// vila/optim/state.hpp — optimizer state keyed by parameter name.
//
// The optimizer never stores a pointer into a model: each update names its parameter, and the
// state (a step count and the optimizer's buffers, e.g. AdamW's exp_avg / exp_avg_sq) is found
// or created by that name. So a model may be moved, copied, frozen or unfrozen at any time:
// a frozen parameter is simply not updated (its gradient is never read), a newly trainable one
// gets fresh state on its first update (as torch does for a parameter without state).
//
// save()/load() write and read one safetensors file: tensors "<name>.<buffer>" (F32, exact),
// metadata {"optimizer": kind, "steps": JSON {name: step}}; load checks the kind, and each
// buffer's shape is checked against its parameter on the first update after loading.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/param.hpp"
#include "../io/safetensors.hpp"

namespace vila::optim {

template <class T, class B>
class named_state {
public:
    struct entry {
        long long step = 0;
        std::vector<tensor<T, B>> buffers;
    };

    named_state(std::string kind, std::vector<std::string> buffer_names) : kind_(std::move(kind)), buffer_names_(std::move(buffer_names)) {}

    /// The state of `name`, created (zero buffers shaped like the parameter) on first use.
    entry& of(const std::string& name, const shape_t& shape) {
        auto it = map_.find(name);
        if (it == map_.end()) {
            entry e;
            for (std::size_t i = 0; i < buffer_names_.size(); ++i) e.buffers.emplace_back(shape);
            it = map_.emplace(name, std::move(e)).first;
        }
        for (std::size_t i = 0; i < buffer_names_.size(); ++i)
            if (it->second.buffers[i].shape() != shape)
                throw shape_error("vila::optim::" + kind_ + ": state '" + name + "." + buffer_names_[i] + "' has shape " +
                                  to_string(it->second.buffers[i].shape()) + " but the parameter has " + to_string(shape));
        return it->second;
    }
    const entry* find(const std::string& name) const {
        const auto it = map_.find(name);
        return it == map_.end() ? nullptr : &it->second;
    }
    std::size_t size() const noexcept { return map_.size(); }
    void clear() { map_.clear(); }
    std::size_t bytes() const {
        std::size_t n = 0;
        for (const auto& [name, e] : map_)
            for (const auto& b : e.buffers) n += std::size_t(b.size()) * sizeof(T);
        return n;
    }

    void save(const std::filesystem::path& file) const {
        std::map<std::string, io::tensor_to_write> out;
        nlohmann::json steps = nlohmann::json::object();
        for (const auto& [name, e] : map_) {
            steps[name] = e.step;
            for (std::size_t i = 0; i < buffer_names_.size(); ++i) {
                const auto h = e.buffers[i].to_host();
                out[name + "." + buffer_names_[i]] = {e.buffers[i].shape(), std::vector<float>(h.begin(), h.end())};
            }
        }
        io::save_safetensors(file, out, {{"optimizer", kind_}, {"steps", steps.dump()}});
    }

    void load(const std::filesystem::path& file) {
        const io::safetensors_file f(file);
        const auto& meta = f.metadata();
        const auto kind = meta.find("optimizer");
        if (kind == meta.end() || kind->second != kind_)
            throw format_error(file.string() + ": optimizer state of '" + (kind == meta.end() ? std::string("?") : kind->second) +
                               "', this optimizer is " + kind_);
        const auto steps_it = meta.find("steps");
        if (steps_it == meta.end()) throw format_error(file.string() + ": no \"steps\" metadata");
        nlohmann::json steps;
        try {
            steps = nlohmann::json::parse(steps_it->second);
        } catch (const nlohmann::json::exception& e) {
            throw format_error(file.string() + ": \"steps\" metadata is not JSON: " + e.what());
        }
        if (!steps.is_object()) throw format_error(file.string() + ": \"steps\" metadata is not an object");
        std::map<std::string, entry> loaded;
        for (const auto& [name, s] : steps.items()) {
            if (!s.is_number_integer() || s.template get<long long>() < 0)
                throw format_error(file.string() + ": step of '" + name + "' is not a non-negative integer");
            entry e;
            e.step = s.template get<long long>();
            for (const auto& b : buffer_names_) {
                const std::string key = name + "." + b;
                if (!f.contains(key)) throw format_error(file.string() + ": missing tensor '" + key + "'");
                tensor<T, B> t(f.info(key).shape);
                f.read(key, t);
                e.buffers.push_back(std::move(t));
            }
            loaded.emplace(name, std::move(e));
        }
        if (f.tensors().size() != loaded.size() * buffer_names_.size())
            throw format_error(file.string() + ": tensors without a step entry");
        map_ = std::move(loaded);
    }

private:
    std::string kind_;
    std::vector<std::string> buffer_names_;
    std::map<std::string, entry> map_;
};

/// What every optimizer offers about its state (AdamW and SGD derive from it).
template <class T, class B>
class optimizer_state {
public:
    /// Steps taken by parameter `name` (0 if it has no state).
    long long steps(const std::string& name) const {
        const auto* e = state_.find(name);
        return e ? e->step : 0;
    }
    std::size_t state_bytes() const { return state_.bytes(); }
    std::size_t state_count() const { return state_.size(); }
    void save(const std::filesystem::path& file) const { state_.save(file); }
    void load(const std::filesystem::path& file) { state_.load(file); }

protected:
    optimizer_state(std::string kind, std::vector<std::string> buffers) : state_(std::move(kind), std::move(buffers)) {}
    named_state<T, B> state_;
};

/// Visits a model's trainable parameters and calls opt.update(name, p, lr, weight decay), with
/// weight decay `wd` where decay(name) says so (no decay where it says no; all when null).
template <class Optimizer, class Model, class Decay>
void step_model(Optimizer& opt, Model& model, double lr, double wd, const Decay& decay) {
    model.for_each_parameter([&](const std::string& name, auto& p) {
        if (!p.trainable) return;
        opt.update(name, p, lr, !decay || decay(name) ? wd : 0.0);
    });
}

}  // namespace vila::optim
