// Backends the typed tests run over: the CPU always, Thrust when the build enables it.
#pragma once
#include <vila/vila.hpp>

#if defined(VILA_USE_THRUST)
#include <vila/backend/thrust.hpp>
#define VILA_TEST_BACKENDS vila::backend::cpu, vila::backend::thrust
#else
#define VILA_TEST_BACKENDS vila::backend::cpu
#endif
