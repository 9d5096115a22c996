// Data: the readers of the real training formats against tests/fixtures/data/expected.json
// (VILA's conventions re-stated in Python with HF tokenizers, made by make_data.py), the tar
// reader against Python's tarfile, mixtures (determinism, resume, sharding), bad records, the
// background loader, and the synthetic world (byte-identical per seed, read as real data).
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <set>

#include "../support/fixtures.hpp"
#include "../support/tokenizer_data.hpp"

using namespace vila;
using namespace vila::test;
namespace fs = std::filesystem;

namespace {
fs::path data_dir() { return fs::path(fixture_path("data")); }
const nlohmann::json& expected(const std::string& source) { return load_json_fixture("data/expected.json").at("records").at(source); }
const tokenizer::tokenizer& mistral() {
    static const auto tok = tokenizer::tokenizer::load(tokenizer_dir("mistral"));
    return tok;
}
std::string stem(const data::image_ref& r) {
    const std::string name = r.member.empty() ? r.file.filename().string() : r.member;
    return name.substr(0, name.rfind('.'));
}
/// Renders every record of a source and compares with the Python rendering.
void check_source(const data::source& src, const nlohmann::json& want, bool stems = false, const std::string& conv = "vicuna_v1") {
    REQUIRE(src.size() == want.size());
    data::render_options o;
    o.conv_template = conv;
    for (std::size_t i = 0; i < src.size(); ++i) {
        CAPTURE(i);
        const auto r = data::render(src.get(i), mistral(), o);
        CHECK(r.s.ids == want[i].at("ids").get<std::vector<int>>());
        CHECK(r.s.labels == want[i].at("labels").get<std::vector<int>>());
        std::vector<std::string> names;
        for (const auto& im : r.images)
            names.push_back(stems ? stem(im) : im.member.empty() ? im.file.filename().string() : im.member.substr(im.member.rfind('/') + 1));
        CHECK(names == want[i].at("images").get<std::vector<std::string>>());
        CHECK(r.s.images == index_t(r.images.size()));
    }
}
vision::image_processor tiny_processor() {
    vision::image_processor p;
    p.type = vision::image_processor::kind::siglip;
    p.do_center_crop = false;
    p.height = p.width = 8;
    return p;
}
std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const vila::error& e) {
        return e.what();
    }
    return "";
}
}  // namespace

TEST_CASE("tar shards written by Python's tarfile: members, pax long names, reads in place, truncation") {
    const io::tar_archive a(data_dir() / "pairs" / "pairs-00000.tar");
    REQUIRE(a.members().size() == 10);
    CHECK(a.members()[0].name == "000000000.jpg");
    CHECK(a.members()[1].name == "000000000.json");
    CHECK(a.members()[6].name == "long/" + std::string(110, 'x') + "/000000003.jpg");  // from a pax header
    const auto txt = a.read(3);
    CHECK(std::string(txt.begin(), txt.end()) == "a green square on <image> white");

    const io::tar_archive cut(data_dir() / "bad" / "truncated.tar");
    REQUIRE(cut.members().size() == 7);
    CHECK(cut.members().back().truncated);
    const std::string msg = message_of([&] { cut.read(6); });
    CHECK(msg.find("truncated.tar:000000003.png: truncated tar member") != std::string::npos);

    // our writer: reproducible bytes, read back by our reader (Python's tarfile and GNU tar list
    // the same archive with mode 0644, owner 0/0 and mtime 0: checked when the writer was made)
    const auto dir = scratch_dir("vila-tar");
    const std::vector<std::pair<std::string, std::string>> members = {
        {"a.txt", "hello"}, {"deep/" + std::string(120, 'd') + "/b.bin", std::string(700, '\x7f')}, {"empty", ""}};
    io::write_tar(dir / "x.tar", members);
    io::write_tar(dir / "y.tar", members);
    std::ifstream x(dir / "x.tar", std::ios::binary), y(dir / "y.tar", std::ios::binary);
    const std::string xs((std::istreambuf_iterator<char>(x)), {}), ys((std::istreambuf_iterator<char>(y)), {});
    CHECK(xs == ys);
    CHECK(xs.size() % 512 == 0);
    const io::tar_archive back(dir / "x.tar");
    REQUIRE(back.members().size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(back.members()[i].name == members[i].first);
        const auto b = back.read(i);
        CHECK(std::string(b.begin(), b.end()) == members[i].second);
    }
    // not a tar file, and a corrupt header
    std::ofstream(dir / "junk.tar") << std::string(1024, 'j');
    CHECK(message_of([&] { io::tar_archive t(dir / "junk.tar"); }).find("bad header checksum") != std::string::npos);
    std::string corrupt = xs;
    corrupt[124] = '9';  // a size digit that is not octal (and a checksum that no longer matches)
    std::ofstream(dir / "corrupt.tar", std::ios::binary) << corrupt;
    CHECK_THROWS_AS(io::tar_archive(dir / "corrupt.tar"), format_error);
    fs::remove_all(dir);
}

TEST_CASE("LLaVA conversation rows (JSON list and JSONL) render to VILA's ids and label masks") {
    const data::llava_source list(data_dir() / "llava" / "rows.json");
    const data::llava_source lines(data_dir() / "llava" / "rows.jsonl");
    check_source(list, expected("llava"));
    check_source(lines, expected("llava"));
    // image paths: beside the file first, then images/; an explicit image folder wins
    CHECK(list.get(2).images[1].file == data_dir() / "llava" / "cat.png");
    CHECK(list.get(0).images[0].file == data_dir() / "llava" / "images" / "red.png");
    CHECK(list.get(1).where == (data_dir() / "llava" / "rows.json").string() + ":16");
    CHECK(lines.get(1).where == (data_dir() / "llava" / "rows.jsonl").string() + ":2");
    const data::llava_source elsewhere(data_dir() / "llava" / "rows.jsonl", {data_dir() / "llava" / "images"});
    CHECK(elsewhere.get(0).images[0].file == data_dir() / "llava" / "images" / "red.png");
    CHECK(message_of([&] { elsewhere.get(2); }).find("rows.jsonl:3: missing image cat.png (looked in ") != std::string::npos);
    // VILA's marks: prepended when absent, one newline after each
    CHECK(list.get(1).turns[0].value == "<image>\nDescribe the picture.");
    CHECK(list.get(2).turns[0].value == "Compare <image>\nand <image>\nwhich is brighter?");
}

TEST_CASE("MMC4 documents and the MMC4-pairs ablation render as VILA's loader, images from a folder or tar shards") {
    const fs::path docs = data_dir() / "mmc4" / "docs.jsonl";
    data::mmc4_options folder;
    folder.image_folder = data_dir() / "mmc4" / "images";
    check_source(data::mmc4_source(docs, folder), expected("mmc4"));
    data::mmc4_options pairs = folder;
    pairs.pairs = true;
    check_source(data::mmc4_source(docs, pairs), expected("mmc4_pairs"));
    data::mmc4_options shards;
    shards.shards = data::list_shards(data_dir() / "mmc4" / "shards");
    const data::mmc4_source in_tar(docs, shards);
    check_source(in_tar, expected("mmc4"));
    const auto r = in_tar.get(1);
    REQUIRE(r.images.size() == 6);  // at most 6 of 8, ordered by sentence
    CHECK(r.images[0].member == "imgs/d0.png");
    CHECK(r.images[5].member == "imgs/d4.png");
    CHECK(r.images[5].file.filename() == "images-00000.tar");
    // the same pixels from the folder and from the shard
    const auto p = tiny_processor();
    CHECK(data::load_pixels(r.images[5], p).to_host() ==
          data::load_pixels(data::mmc4_source(docs, folder).get(1).images[5], p).to_host());
    // similarity threshold
    data::mmc4_options strict = folder;
    strict.min_similarity = 0.2;
    CHECK(data::mmc4_source(docs, strict).get(2).images.size() == 1);
    CHECK(data::mmc4_source(docs, strict).get(1).images.size() == 6);
    strict.min_similarity = 0.3;
    CHECK(data::mmc4_source(docs, strict).get(1).images.size() == 1);  // only d7 (0.5)
}

TEST_CASE("webdataset image-text pairs are packed 4 per sample as VILA packs COYO") {
    const data::webdataset_pairs_source src(data::list_shards(data_dir() / "pairs"));
    CHECK(src.pair_count() == 9);
    check_source(src, expected("pairs"), true);  // 9 pairs: two samples, the last pair dropped
    data::pairs_options one;
    one.pack = 1;
    const data::webdataset_pairs_source single(data::list_shards(data_dir() / "pairs"), one);
    CHECK(single.size() == 9);
    CHECK(single.get(8).segments == std::vector<std::string>{"<image>one more"});
}

TEST_CASE("text-only data: FLAN instruction rows through the template, plain text with EOS") {
    check_source(data::instruction_source(data_dir() / "text" / "flan.jsonl"), expected("flan"));
    check_source(data::text_source(data_dir() / "text" / "text.jsonl"), expected("text"));
}

TEST_CASE("JSON row index: errors name file and line") {
    const auto dir = scratch_dir("vila-rows");
    std::ofstream(dir / "open.json") << "[\n {\"a\": 1},\n {\"b\": \"]\"}\n";
    CHECK(message_of([&] { data::json_rows r(dir / "open.json"); }).find("open.json:4: the JSON list is not closed") != std::string::npos);
    std::ofstream(dir / "comma.json") << "[{\"a\": 1},\n]";
    CHECK(message_of([&] { data::json_rows r(dir / "comma.json"); }).find("trailing comma") != std::string::npos);
    std::ofstream(dir / "rows.jsonl") << "{\"a\": 1}\n\n  \n{\"a\": [1, \"x\\\"]\"]}\n{bad\n";
    const data::json_rows rows(dir / "rows.jsonl");
    REQUIRE(rows.size() == 3);
    CHECK(rows.row(1).at("a")[1] == "x\"]");
    CHECK(message_of([&] { rows.row(2); }).find("rows.jsonl:5: invalid JSON") != std::string::npos);
    std::ofstream(dir / "list.json") << "[ {\"a\": \"[{,\"}, [1, 2],\n  3 ]  \n";
    const data::json_rows list(dir / "list.json");
    REQUIRE(list.size() == 3);
    CHECK(list.row(0).at("a") == "[{,");
    CHECK(list.row(2) == 3);
    CHECK(list.where(2) == (dir / "list.json").string() + ":2");
    std::ofstream(dir / "empty.json") << " [ ] ";
    CHECK(data::json_rows(dir / "empty.json").size() == 0);
    fs::remove_all(dir);
}

TEST_CASE("truncation to a maximum length never cuts an image's tokens") {
    data::record r;
    r.type = data::record::kind::text;
    r.where = "doc";
    r.segments = {"one <image>\ntwo three <image>\nfour five six"};
    r.images = {{"a.png", "", 0, 0, false}, {"b.png", "", 0, 0, false}};
    data::render_options o;
    o.tokens_per_image = 4;
    const auto whole = data::render(r, mistral(), o);
    const index_t n = index_t(whole.s.ids.size()) + 2 * 3;  // spliced length
    o.max_length = n;
    CHECK_FALSE(data::render(r, mistral(), o).truncated);
    // cut inside the second image: it goes, with everything after it
    std::size_t second = 0;
    for (std::size_t t = 0, seen = 0; t < whole.s.ids.size(); ++t)
        if (whole.s.ids[t] == -200 && ++seen == 2) second = t;
    o.max_length = index_t(second) + 3 + 2;  // text before it, the first image's 4 tokens, half of the second
    const auto cut = data::render(r, mistral(), o);
    CHECK(cut.truncated);
    CHECK(cut.dropped_images == 1);
    CHECK(cut.images.size() == 1);
    CHECK(cut.s.ids.size() == second);
    CHECK(cut.s.images == 1);
    o.max_length = 2;  // BOS and "one": nothing but... one label still
    CHECK(data::render(r, mistral(), o).s.ids.size() == 2);
    o.max_length = 1;
    CHECK(message_of([&] { data::render(r, mistral(), o); }).find("doc: nothing left to train on after truncation to 1 tokens") != std::string::npos);
}

namespace {
/// A counting source: record i is the text "r<i>" (its ids tell which record it was).
class numbers : public data::source {
public:
    numbers(std::string name, std::size_t n) : name_(std::move(name)), n_(n) {}
    std::size_t size() const override { return n_; }
    std::string describe() const override { return name_; }
    data::record get(std::size_t i) const override {
        data::record r;
        r.type = data::record::kind::text;
        r.where = name_ + ":" + std::to_string(i);
        r.segments = {name_ + std::to_string(i)};
        return r;
    }

private:
    std::string name_;
    std::size_t n_;
};
template <class Policy>
std::vector<std::string> sequence(std::vector<data::mixture_entry> sources, data::mixture_options o, int batches) {
    data::mixture_sampler<Policy> s(std::move(sources), mistral(), {}, nullptr, o);
    std::vector<std::string> out;
    for (int b = 0; b < batches; ++b) {
        const auto batch = s.next();
        for (const auto& smp : batch.samples) out.push_back(mistral().decode(smp.ids, true));
    }
    return out;
}
}  // namespace

TEST_CASE("mixtures: natural share spreads every source evenly over an epoch, reproducible from the seed") {
    std::vector<data::mixture_entry> src = {{"a", std::make_shared<numbers>("a", 6)}, {"b", std::make_shared<numbers>("b", 3)}};
    data::mixture_options o;
    o.batch_size = 3;
    o.seed = 5;
    const auto first = sequence<data::mix::natural>(src, o, 3);  // one epoch
    CHECK(first == sequence<data::mix::natural>(src, o, 3));
    std::multiset<std::string> epoch(first.begin(), first.end());
    CHECK(epoch == std::multiset<std::string>{"a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1", "b2"});
    // b's three records are spread: one in each third of the epoch
    for (int third = 0; third < 3; ++third) {
        int bs = 0;
        for (int k = 0; k < 3; ++k) bs += first[std::size_t(third * 3 + k)][0] == 'b';
        CHECK(bs == 1);
    }
    o.seed = 6;
    CHECK(sequence<data::mix::natural>(src, o, 3) != first);
    o.shuffle = false;
    CHECK(sequence<data::mix::natural>(src, o, 3) == std::vector<std::string>{"a0", "b0", "a1", "a2", "b1", "a3", "a4", "b2", "a5"});
    CHECK(sequence<data::mix::sequential>(src, o, 3) == std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1", "b2"});
}

TEST_CASE("mixtures: weighted draws follow the weights, and a resumed sampler continues exactly") {
    std::vector<data::mixture_entry> src = {{"a", std::make_shared<numbers>("a", 5), 3.0}, {"b", std::make_shared<numbers>("b", 7), 1.0}};
    data::mixture_options o;
    o.batch_size = 4;
    o.seed = 11;
    const auto draws = sequence<data::mix::weighted>(src, o, 250);
    std::size_t as = 0;
    for (const auto& d : draws) as += d[0] == 'a';
    CHECK(double(as) / double(draws.size()) == doctest::Approx(0.75).epsilon(0.04));

    for (int policy = 0; policy < 3; ++policy) {
        CAPTURE(policy);
        auto run = [&](auto tag) {
            using P = decltype(tag);
            data::mixture_sampler<P> whole(src, mistral(), {}, nullptr, o), part(src, mistral(), {}, nullptr, o);
            for (int b = 0; b < 5; ++b) whole.next(), part.next();
            const nlohmann::json saved = nlohmann::json::parse(part.state().dump());
            data::mixture_sampler<P> resumed(src, mistral(), {}, nullptr, o);
            resumed.restore(saved);
            for (int b = 0; b < 7; ++b) CHECK(whole.next().samples[0].ids == resumed.next().samples[0].ids);
            // a state of another mixture is refused
            auto other = src;
            other[1].src = std::make_shared<numbers>("b", 8);
            data::mixture_sampler<P> wrong(other, mistral(), {}, nullptr, o);
            CHECK_THROWS_AS(wrong.restore(saved), config_error);
        };
        if (policy == 0) run(data::mix::natural{});
        if (policy == 1) run(data::mix::weighted{});
        if (policy == 2) run(data::mix::sequential{});
    }
}

TEST_CASE("mixtures: two shards see disjoint samples whose union is the unsharded epoch") {
    std::vector<data::mixture_entry> src = {{"a", std::make_shared<numbers>("a", 10)}, {"b", std::make_shared<numbers>("b", 6)}};
    data::mixture_options o;
    o.batch_size = 2;
    o.seed = 3;
    const auto all = sequence<data::mix::natural>(src, o, 8);  // 16 = one epoch
    o.world = 2;
    const auto r0 = sequence<data::mix::natural>(src, o, 4);
    o.rank = 1;
    const auto r1 = sequence<data::mix::natural>(src, o, 4);
    std::vector<std::string> interleaved;
    for (std::size_t i = 0; i < r0.size(); ++i) interleaved.push_back(r0[i]), interleaved.push_back(r1[i]);
    CHECK(interleaved == all);
    std::set<std::string> s0(r0.begin(), r0.end()), s1(r1.begin(), r1.end());
    for (const auto& x : s0) CHECK(s1.count(x) == 0);
    CHECK(s0.size() + s1.size() == 16);
}

TEST_CASE("bad records: lenient skips and counts each by reason with its location, strict stops there") {
    const fs::path bad = data_dir() / "bad";
    data::mmc4_options filtered;
    filtered.image_folder = bad / "images";
    filtered.min_similarity = 0.24;
    data::pairs_options one;
    one.pack = 1;
    std::vector<data::mixture_entry> src = {
        {"llava", std::make_shared<data::llava_source>(bad / "llava.jsonl", data::llava_options{bad / "images"})},
        {"pairs", std::make_shared<data::webdataset_pairs_source>(std::vector<fs::path>{bad / "truncated.tar"}, one)},
        {"mmc4", std::make_shared<data::mmc4_source>(bad / "filtered.jsonl", filtered)}};
    const auto proc = tiny_processor();
    data::mixture_options o;
    o.batch_size = 5;  // the 5 good records of one epoch (8 + 4 + 2 = 14 draws)
    o.shuffle = false;
    data::mixture_sampler<data::mix::sequential> s(src, mistral(), {}, &proc, o);
    const auto b = s.next();
    CHECK(b.samples.size() == 5);
    CHECK(b.sources == std::vector<std::string>{"llava", "llava", "pairs", "pairs", "mmc4"});
    CHECK(b.pixels.shape() == shape_t{4, 3, 8, 8});  // llava good (1), pairs (2), mmc4 (1); good2 is text-only
    const auto& log = s.bad_records_seen();
    const std::map<std::string, std::size_t> want = {{"invalid JSON", 1},   {"missing image", 1},        {"corrupt image", 1},
                                                     {"image count mismatch", 1}, {"bad conversation", 2}, {"missing caption", 1},
                                                     {"truncated tar member", 1}, {"no image left", 1}};
    CHECK(log.counts == want);
    CHECK(log.total() == 9);
    REQUIRE(log.first.size() == 5);
    CHECK(log.first[0].find("llava.jsonl:2: invalid JSON") != std::string::npos);
    CHECK(log.first[1].find("llava.jsonl:3: missing image nowhere.png") != std::string::npos);
    CHECK(log.first[2].find("llava.jsonl:4: ") != std::string::npos);
    CHECK(log.first[2].find("corrupt.png: corrupt or truncated image") != std::string::npos);

    o.on_bad = data::bad_records::strict;
    data::mixture_sampler<data::mix::sequential> strict(src, mistral(), {}, &proc, o);
    CHECK(message_of([&] { strict.next(); }).find("llava.jsonl:2: invalid JSON") != std::string::npos);
}

TEST_CASE("the background loader yields exactly what loading in the caller's thread does, and resumes the same") {
    const fs::path bad = data_dir() / "bad";
    data::pairs_options one;
    one.pack = 1;
    const auto proc = tiny_processor();
    auto sources = [&] {
        return std::vector<data::mixture_entry>{
            {"llava", std::make_shared<data::llava_source>(bad / "llava.jsonl", data::llava_options{bad / "images"})},
            {"pairs", std::make_shared<data::webdataset_pairs_source>(std::vector<fs::path>{bad / "truncated.tar"}, one)},
            {"docs", std::make_shared<data::mmc4_source>(data_dir() / "mmc4" / "docs.jsonl",
                                                         data::mmc4_options{data_dir() / "mmc4" / "images", {}, 0.0, 6, false})}};
    };
    data::mixture_options o;
    o.batch_size = 3;
    o.seed = 9;
    auto same = [](const data::batch& a, const data::batch& b) {
        bool ok = a.samples.size() == b.samples.size() && a.sources == b.sources && a.pixels.shape() == b.pixels.shape();
        for (std::size_t i = 0; ok && i < a.samples.size(); ++i) ok = a.samples[i].ids == b.samples[i].ids && a.samples[i].labels == b.samples[i].labels;
        return ok && (a.images() == 0 || a.pixels.to_host() == b.pixels.to_host());
    };
    data::mixture_sampler<data::mix::natural> sync(sources(), mistral(), {}, &proc, o);
    o.workers = 2;
    o.prefetch = 5;
    data::mixture_sampler<data::mix::natural> async(sources(), mistral(), {}, &proc, o), part(sources(), mistral(), {}, &proc, o);
    std::vector<data::batch> want;
    for (int b = 0; b < 8; ++b) {
        want.push_back(sync.next());
        CHECK(same(want.back(), async.next()));
    }
    CHECK(sync.bad_records_seen().counts == async.bad_records_seen().counts);
    CHECK(sync.state() == async.state());
    for (int b = 0; b < 3; ++b) part.next();
    const auto saved = part.state();  // while loads from later draws are in flight
    data::mixture_sampler<data::mix::natural> resumed(sources(), mistral(), {}, &proc, o);
    resumed.restore(saved);
    for (int b = 3; b < 8; ++b) CHECK(same(want[std::size_t(b)], resumed.next()));
    part.restore(saved);  // restoring a sampler with loads pending drops them
    CHECK(same(want[3], part.next()));
}

namespace {
/// Every file of a folder: relative path -> bytes.
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
    const auto dir = scratch_dir("vila-world");
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
    const auto tok = tokenizer::tokenizer::load(tokenizer_dir("mistral"));
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
        const std::string source_name = name;  // (CAPTURE's lambda cannot capture a structured binding in C++17)
        CAPTURE(source_name);
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
            REQUIRE(s.size() > 1);
            REQUIRE(s.back() == '.');
            REQUIRE(s.find(' ') == std::string::npos);  // the name right after its picture (no filler words)
            named.insert(s.substr(0, s.size() - 1));
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
    CHECK(data::llava_source(w / "eval" / "captions.json").size() == 60);
    // text in-context episodes: the held-out prompt ends with a key seen once, its label among the choices
    const data::json_rows text_icl(w / "eval" / "text_icl.jsonl");
    CHECK(text_icl.size() == 40);
    for (std::size_t i = 0; i < text_icl.size(); ++i) {
        const auto e = text_icl.row(i);
        const std::string prompt = e.at("prompt");
        const std::string answer = e.at("answer");
        REQUIRE(prompt.size() > 2);
        REQUIRE(prompt.back() == '\n');
        const std::string key = prompt.substr(prompt.rfind(' ') + 1, prompt.size() - prompt.rfind(' ') - 2);
        CHECK(prompt.find(key + "\n" + answer + ".") != std::string::npos);
    }
    for (const char* f : {"copy", "text_icl", "descriptions"}) CHECK(data::open_source(data::parse_mixture(f, w / "registry.json").at(0))->size() > 0);
    CHECK(data::parse_mixture("copy:0.25+knowledge", w / "registry.json").at(0).weight == 0.25);
    CHECK_THROWS_AS(data::parse_mixture("copy:-1", w / "registry.json"), config_error);
    fs::remove_all(dir);
}

TEST_CASE("web_text adds unmatched passages of ordinary text to each document, which MMC4-pairs drops") {
    const auto dir = scratch_dir("vila-world-web");
    data::synthetic::world_options o;
    o.documents = 20;
    data::synthetic::write_world(dir / "plain", o);
    o.web_text = 3;
    data::synthetic::write_world(dir / "web", o);
    o.web_text = 9;
    CHECK_THROWS_AS(data::synthetic::write_world(dir / "bad", o), config_error);
    const data::json_rows plain(dir / "plain" / "mmc4" / "docs.jsonl"), web(dir / "web" / "mmc4" / "docs.jsonl");
    REQUIRE(plain.size() == web.size());
    const auto reg = dir / "web" / "registry.json";
    const auto interleaved = data::open_source(data::parse_mixture("mmc4", reg).at(0));
    const auto pairs = data::open_source(data::parse_mixture("mmc4_pairs", reg).at(0));
    std::size_t facts = 0, episodes = 0;
    for (std::size_t d = 0; d < web.size(); ++d) {
        const auto doc = web.row(d);
        const auto& text = doc.at("text_list");
        CHECK(text.size() == plain.row(d).at("text_list").size() + 3);
        std::set<std::size_t> matched;
        for (const auto& im : doc.at("image_info")) matched.insert(im.at("matched_text_index").get<std::size_t>());
        std::string joined;
        for (const auto& seg : interleaved->get(d).segments) joined += seg;
        std::string pair_text;
        for (const auto& seg : pairs->get(d).segments) pair_text += seg;
        for (std::size_t t = text.size() - 3; t < text.size(); ++t) {
            const std::string passage = text[t];
            CHECK(matched.count(t) == 0);       // matched to no picture
            CHECK(passage.front() != ' ');      // joined with one space, as every sentence
            CHECK(joined.find(passage) != std::string::npos);
            CHECK(pair_text.find(passage) == std::string::npos);
            facts += passage.find("the capital of") != std::string::npos;
            episodes += passage.find('\n') != std::string::npos;
        }
    }
    CHECK(facts > 0);     // drawn from the stage-0 mixture: facts and episodes both appear
    CHECK(episodes > 0);
    fs::remove_all(dir);
}
