// Host calls Glibc's Swift module does not expose: xattrs and makedev (a macro).
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
#endif
