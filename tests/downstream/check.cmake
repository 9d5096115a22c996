# Builds and runs tests/downstream/app against vila, the way a user's project would use it.
#   MODE=install       configure vila alone, install it to WORK/prefix, then find_package(vila)
#   MODE=subdirectory  the app adds vila's source tree with add_subdirectory
# Run with: cmake -DMODE=... -DVILA_SOURCE=... -DWORK=... [-DGENERATOR=...] -P check.cmake
foreach(var MODE VILA_SOURCE WORK)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check.cmake needs -D${var}=...")
  endif()
endforeach()
set(gen_args)
if(GENERATOR)
  set(gen_args -G "${GENERATOR}")
endif()
file(REMOVE_RECURSE "${WORK}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()

set(app_src "${VILA_SOURCE}/tests/downstream/app")
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} ${gen_args} -S "${VILA_SOURCE}" -B "${WORK}/vila-build" -DCMAKE_BUILD_TYPE=Release
      -DVILA_BUILD_TESTS=OFF -DVILA_BUILD_EXAMPLES=OFF -DVILA_BUILD_BENCHMARKS=OFF
      -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
  run(${CMAKE_COMMAND} --install "${WORK}/vila-build")
  run(${CMAKE_COMMAND} ${gen_args} -S "${app_src}" -B "${WORK}/app-build" -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH=${WORK}/prefix -DVILA_CONSUME=find_package)
elseif(MODE STREQUAL "subdirectory")
  run(${CMAKE_COMMAND} ${gen_args} -S "${app_src}" -B "${WORK}/app-build" -DCMAKE_BUILD_TYPE=Release
      -DVILA_CONSUME=subdirectory -DVILA_SOURCE=${VILA_SOURCE})
else()
  message(FATAL_ERROR "MODE must be install or subdirectory")
endif()
run(${CMAKE_COMMAND} --build "${WORK}/app-build" -j 2)
run("${WORK}/app-build/vila_downstream_app")

# The embedding example (examples/embed), built against the installed package, asks the
# fixture VILA model about two fixture images.
if(MODE STREQUAL "install")
  run(${CMAKE_COMMAND} ${gen_args} -S "${VILA_SOURCE}/examples/embed" -B "${WORK}/embed-build" -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH=${WORK}/prefix)
  run(${CMAKE_COMMAND} --build "${WORK}/embed-build" -j 2)
  set(fx "${VILA_SOURCE}/tests/fixtures")
  run("${WORK}/embed-build/ask_images" --model "${fx}/vlm/vila" --image "${fx}/images/a.png" --image "${fx}/images/a.jpg"
      --prompt "<image> and <image>: which is red?" --conv vicuna_v1 --max-new-tokens 8)
endif()
