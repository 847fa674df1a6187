/*
 * upward.c -- a probe compiled as a source of cmd/ would be (cmd/'s include
 * roots, CMakeLists.txt): it includes a header of a layer below cmd/, which
 * is found, then one of net/, a layer above, which must not be (ctest
 * layers_refuse_upward_include expects "net/net.h" not found).
 */
#include "store/store.h"
#include "net/net.h"
