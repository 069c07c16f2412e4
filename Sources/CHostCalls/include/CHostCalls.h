// Host calls Glibc's Swift module does not expose: xattrs, makedev (a macro) and O_PATH (a _GNU_SOURCE flag).
#ifndef PAGESHARE_CHOSTCALLS_H
#define PAGESHARE_CHOSTCALLS_H
#include <sys/types.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

static inline dev_t pageshare_makedev(unsigned int major, unsigned int minor) {
    return makedev(major, minor);
}
static inline unsigned int pageshare_major(dev_t device) { return major(device); }
static inline unsigned int pageshare_minor(dev_t device) { return minor(device); }
/// `O_PATH` (010000000 on Linux): a descriptor that names a directory for *at calls without opening it.
static const int pageshare_O_PATH = 010000000;
#endif
