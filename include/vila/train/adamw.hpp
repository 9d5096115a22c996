// vila/train/adamw.hpp — moved: optimizers live in vila/optim/ (namespace vila::optim, as
// before). This header stays for code written against 0.1; include <vila/optim/adamw.hpp>.
#pragma once
#include "../optim/adamw.hpp"
