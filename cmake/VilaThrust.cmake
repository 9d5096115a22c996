# VilaThrust.cmake — the opt-in vila::thrust target, chosen by VILA_THRUST_DEVICE.
#   OFF          no target
#   CPP | OMP    Thrust on the host with any C++ compiler (headers from libthrust-dev or CCCL)
#   CUDA         Thrust on the GPU: enables the CUDA language, links cuBLAS for GEMM
# Every translation unit linking vila::thrust sees the same THRUST_DEVICE_SYSTEM (ODR).
string(TOUPPER "${VILA_THRUST_DEVICE}" _vila_dev)
if(_vila_dev STREQUAL "OFF" OR _vila_dev STREQUAL "")
  return()
endif()
if(NOT _vila_dev MATCHES "^(CPP|OMP|CUDA)$")
  message(FATAL_ERROR "VILA_THRUST_DEVICE must be OFF, CPP, OMP or CUDA (got '${VILA_THRUST_DEVICE}')")
endif()

add_library(vila_thrust INTERFACE)
add_library(vila::thrust ALIAS vila_thrust)
set_target_properties(vila_thrust PROPERTIES EXPORT_NAME thrust)
target_link_libraries(vila_thrust INTERFACE vila)
target_compile_definitions(vila_thrust INTERFACE VILA_USE_THRUST
  THRUST_DEVICE_SYSTEM=THRUST_DEVICE_SYSTEM_${_vila_dev})

if(_vila_dev STREQUAL "CUDA")
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  target_link_libraries(vila_thrust INTERFACE CUDA::cublas CUDA::cudart)
  target_compile_definitions(vila_thrust INTERFACE VILA_USE_CUBLAS)
else()
  # Host systems: Debian's libthrust-dev (/usr/include) or the CUDA toolkit's CCCL headers.
  find_path(VILA_THRUST_INCLUDE_DIR thrust/version.h
    PATHS /usr/include /usr/local/cuda/include/cccl /usr/local/cuda/include
    DOC "Directory holding thrust/version.h")
  if(NOT VILA_THRUST_INCLUDE_DIR)
    message(FATAL_ERROR "VILA_THRUST_DEVICE=${_vila_dev} needs Thrust headers: apt-get install libthrust-dev, "
                        "or set VILA_THRUST_INCLUDE_DIR")
  endif()
  if(NOT VILA_THRUST_INCLUDE_DIR STREQUAL "/usr/include")
    target_include_directories(vila_thrust SYSTEM INTERFACE ${VILA_THRUST_INCLUDE_DIR})
  endif()
  if(_vila_dev STREQUAL "OMP" AND NOT OpenMP_CXX_FOUND)
    message(FATAL_ERROR "VILA_THRUST_DEVICE=OMP needs OpenMP")
  endif()
endif()
list(APPEND VILA_EXPORT_TARGETS vila_thrust)
