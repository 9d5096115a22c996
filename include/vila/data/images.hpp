// vila/data/images.hpp — an image_ref's bytes decoded (a file or a tar shard's member, read in
// place) and preprocessed with the model's image processor into pixels [3, H, W].
#pragma once
#include <fstream>
#include <string>
#include <vector>

#include "../io/tar.hpp"
#include "../vision/image.hpp"
#include "record.hpp"

namespace vila::data {

inline vision::image load_image(const image_ref& ref) {
    if (ref.member.empty()) {
        if (!std::filesystem::exists(ref.file)) throw io_error("missing image " + ref.file.string());
        return vision::load_image(ref.file);
    }
    const auto bytes = io::tar_archive::read_member(ref.file, {ref.member, ref.offset, ref.size, ref.truncated});
    return vision::decode_image(bytes.data(), bytes.size(), ref.where());
}

inline tensor<float> load_pixels(const image_ref& ref, const vision::image_processor& processor) {
    return processor.preprocess(load_image(ref));
}

}  // namespace vila::data
