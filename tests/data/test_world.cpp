// The synthetic world: deterministic from its seed (byte-identical files), the default sizes,
// and every part read by the real-format readers and rendered without a bad record.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {
std::map<std::string, std::string> tree(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) {
            std::ifstream f(e.path(), std::ios::binary);
            out[fs::relative(e.path(), dir).string()] = std::string((std::istreambuf_iterator<char>(f)), {});
        }
    return out;
}
}  // namespace

TEST_CASE("the synthetic world is byte-identical for a seed, has the default sizes, and reads as real data") {
    const auto dir = test::scratch_dir("vila-world");
    data::synthetic::world_options o;
    o.seed = 3;
    const auto sum = data::synthetic::write_world(dir / "a", o);
    data::synthetic::write_world(dir / "b", o);
    o.seed = 4;
    data::synthetic::write_world(dir / "c", o);
    const auto a = tree(dir / "a");
    CHECK(a == tree(dir / "b"));
    CHECK(a != tree(dir / "c"));
    CHECK(a.size() == sum.files);
    CHECK_THROWS_AS(data::synthetic::write_world(dir / "a", o), io_error);  // never into an existing folder

    const fs::path w = dir / "a";
    const auto tok = tokenizer::tokenizer::load(test::tokenizer_dir("mistral"));
    const auto specs = data::parse_mixture("coyo+mmc4+mmc4_pairs+llava+flan+knowledge", w / "registry.json");
    std::map<std::string, std::shared_ptr<const data::source>> src;
    for (const auto& s : specs) src[s.name] = data::open_source(s);
    const auto& pairs = dynamic_cast<const data::webdataset_pairs_source&>(*src["coyo"]);
    CHECK(pairs.pair_count() >= 100);
    CHECK(src["mmc4"]->size() == 50);
    CHECK(src["llava"]->size() == 100);
    CHECK(src["flan"]->size() >= 50);
    std::size_t mmc4_images = 0;
    std::set<std::string> llava_images;
    vision::image_processor proc;  // CLIP 224: every picture decodes and preprocesses
    for (const auto& [name, s] : src) {
        CAPTURE(name);
        for (std::size_t i = 0; i < s->size(); ++i) {
            const auto r = s->get(i);
            const auto out = data::render(r, tok, {});
            CHECK(out.images.size() == r.images.size());
            if (name == "mmc4") mmc4_images += r.images.size();
            if (name == "llava")
                for (const auto& im : r.images) llava_images.insert(im.file.filename().string());
            if (i < 3)
                for (const auto& im : out.images) CHECK(data::load_pixels(im, proc).shape() == shape_t{3, 224, 224});
        }
    }
    CHECK(mmc4_images == 100);
    CHECK(llava_images.size() == 50);

    // interleaving carries information: every later sentence's name was given next to a picture
    const data::json_rows docs(w / "mmc4" / "docs.jsonl");
    for (std::size_t d = 0; d < docs.size(); ++d) {
        const auto doc = docs.row(d);
        std::set<std::string> named;
        for (const auto& im : doc.at("image_info")) {
            const std::string s = doc.at("text_list")[im.at("matched_text_index").get<std::size_t>()];
            REQUIRE(s.rfind("this is ", 0) == 0);
            named.insert(s.substr(8, s.size() - 9));
        }
        const auto& text = doc.at("text_list");
        for (std::size_t t = text.size() - named.size(); t < text.size(); ++t) {
            const std::string s = text[t];
            CHECK(named.count(s.substr(s.rfind(' ') + 1, s.size() - s.rfind(' ') - 2)) == 1);
        }
    }
    // held-out sets
    const data::json_rows icl(w / "eval" / "icl.jsonl"), mc(w / "eval" / "text_mc.jsonl");
    CHECK(icl.size() == 40);
    for (std::size_t i = 0; i < icl.size(); ++i) {
        const auto e = icl.row(i);
        const auto choices = e.at("choices").get<std::vector<std::string>>();
        CHECK(std::count(choices.begin(), choices.end(), e.at("answer").get<std::string>()) == 1);
        CHECK(e.at("image").size() == e.at("shots").get<std::size_t>() + 1);
        CHECK(tokenizer::count_image_marks(e.at("prompt").get<std::string>()) == e.at("image").size());
        for (const auto& f : e.at("image")) CHECK(fs::exists(w / "eval" / "images" / f.get<std::string>()));
    }
    for (std::size_t i = 0; i < mc.size(); ++i) CHECK(mc.row(i).at("choices").size() == 4);
    CHECK(data::llava_source(w / "eval" / "vqa.json").size() == 60);
    fs::remove_all(dir);
}
