// vila/detail/xtensor_compat.hpp — include xtensor's containers from either header layout.
//
// xtensor 0.26 moved `xtensor/xarray.hpp` to `xtensor/containers/xarray.hpp`; Debian 12 ships
// 0.24.3 with the flat layout. This shim lets both compile.
#pragma once
#if __has_include(<xtensor/containers/xarray.hpp>)
#include <xtensor/containers/xarray.hpp>
#else
#include <xtensor/xarray.hpp>
#endif
