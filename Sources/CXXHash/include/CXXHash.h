// Debian's libxxhash (libxxhash-dev).
#ifndef PAGESHARE_CXXHASH_H
#define PAGESHARE_CXXHASH_H
#include <xxhash.h>
#endif
