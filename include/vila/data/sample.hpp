// vila/data/sample.hpp — one training or inference sequence, as data produces it and models
// consume it. It lives in data/ so that data never depends on model/.
//
// ids hold text token ids and image tokens (a model's image_token_id: VILA's -200, or LLaVA's
// vocabulary entry); labels are the ids' targets before the next-token shift (-100 = no loss;
// empty = the ids themselves); images says how many images the sample holds (-1: one per image
// token). A batch's images travel separately, as one pixel tensor in sample order.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/shape.hpp"

namespace vila::data {

struct sample {
    std::vector<std::int32_t> ids;
    std::vector<std::int32_t> labels;
    index_t images = -1;
};

}  // namespace vila::data
