#!/usr/bin/env bash
# Every public header compiles on its own (it includes what it uses). Thrust and CUDA headers
# are checked by the Thrust build and tests/cuda/compile_check.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/include"
find vila -name '*.hpp' ! -path '*/cuda/*' ! -name thrust.hpp | sort |
  xargs -P "$(nproc)" -I{} sh -c 'printf "#include <%s>\n" "{}" | ${CXX:-g++} -std=c++17 -fsyntax-only -fopenmp -Wall -Wextra -Wpedantic -Werror -I. -isystem /usr/include/eigen3 -x c++ - || { echo "header does not compile alone: {}"; exit 255; }'
echo "headers: $(find vila -name '*.hpp' ! -path '*/cuda/*' ! -name thrust.hpp | wc -l) compile standalone"
