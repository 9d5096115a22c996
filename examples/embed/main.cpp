// Embedding vila.hpp in an application: ask a visual language model about pictures.
//
// This folder is a complete project of its own, built against an installed vila.hpp:
//   cmake -S examples/embed -B build/embed -DCMAKE_PREFIX_PATH=/usr/local && cmake --build build/embed
//   build/embed/ask_images --model VILA1.5-3b --image cat.jpg --prompt "<image>\nWhat is in the picture?" --conv vicuna_v1
// (vila.hpp's own build also compiles it, as examples/ask_images.) Everything an application
// needs is vila::assistant: it reads a VILA-layout or LLaVA-HF folder, decodes and preprocesses
// the images, builds the prompt and streams the answer.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <vila/model/assistant.hpp>

int main(int argc, char** argv) {
    std::string model, prompt = "Describe the picture.";
    std::vector<std::string> images;
    vila::ask_options opt;
    opt.max_new_tokens = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--model") model = value;
        else if (flag == "--image") images.push_back(value);
        else if (flag == "--prompt") prompt = value;
        else if (flag == "--conv") opt.conv = value;
        else if (flag == "--max-new-tokens") opt.max_new_tokens = std::stoi(value);
        else {
            std::fprintf(stderr, "unknown option %s\n", flag.c_str());
            return 2;
        }
    }
    if (model.empty() || images.empty()) {
        std::fprintf(stderr, "usage: ask_images --model DIR --image FILE [--image FILE]... [--prompt TEXT] [--conv NAME]\n");
        return 2;
    }
    try {
        auto assistant = vila::assistant::load(model);
        std::fprintf(stderr, "%s", assistant.summary().c_str());
        const std::string answer = assistant.ask(images, prompt, opt, [](const std::string& piece) {
            std::cout << piece << std::flush;  // streamed as it is generated
            return true;                       // false would stop early
        });
        std::cout << "\n";
        std::fprintf(stderr, "(%zu bytes of answer)\n", answer.size());
    } catch (const vila::error& e) {  // bad files, configs, images: one clear message
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
