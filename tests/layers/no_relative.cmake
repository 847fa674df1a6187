# The include roots (CMakeLists.txt, "the layers") are the only way one
# folder of src/ reaches another: a relative include ("../net/net.h") would
# get round them, so none is allowed. Run by ctest layers_no_relative_include:
#   cmake -DSRC=<source dir>/src -P no_relative.cmake
file(GLOB_RECURSE files ${SRC}/*.c ${SRC}/*.h ${SRC}/*.def)
set(bad 0)
foreach(f ${files})
    file(STRINGS ${f} hits REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<][.][.]?/")
    if(hits)
        message(SEND_ERROR "relative include in ${f}: ${hits}")
        set(bad 1)
    endif()
endforeach()
list(LENGTH files n)
if(n EQUAL 0)
    message(FATAL_ERROR "no sources found under ${SRC}")
endif()
if(NOT bad)
    message(STATUS "${n} files, no relative include")
endif()
