// vila/data/record.hpp — one dataset record as a reader produces it, before tokenization: either
// a conversation (LLaVA rows, FLAN rows; rendered by a chat template, loss on the assistant's
// turns) or a pre-training text (MMC4 documents, packed COYO pairs, plain text; loss on all
// text), with "<image>" marks where its images go and where to find each image's bytes.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "../tokenizer/chat_template.hpp"

namespace vila::data {

/// Where an image's encoded bytes are: a file, or a member of a tar shard.
struct image_ref {
    std::filesystem::path file;
    std::string member;            // tar member name ("" for a plain file)
    std::uint64_t offset = 0, size = 0;  // of a tar member's data
    bool truncated = false;        // the shard ends inside the member
    std::string where() const { return member.empty() ? file.string() : file.string() + ":" + member; }
};

struct record {
    enum class kind { conversation, text };
    kind type = kind::text;
    tokenizer::conversation turns;  // kind::conversation
    std::vector<std::string> segments;  // kind::text: pieces of text, each followed by EOS (COYO packs 4)
    std::vector<image_ref> images;  // in the order of the "<image>" marks
    std::string where;              // file:line (or shard:key) for messages
};

}  // namespace vila::data
