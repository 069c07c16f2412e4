// Debian's codec libraries, imported into Swift as one module.
// liblz4-dev, libzstd-dev, liblzma-dev, zlib1g-dev.
#ifndef PAGESHARE_CCODECS_H
#define PAGESHARE_CCODECS_H
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>
#endif
