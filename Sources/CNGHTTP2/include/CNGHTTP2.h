// Debian's libnghttp2 (libnghttp2-dev): HTTP/2 framing, HPACK, the stream state machine and flow control.
#ifndef PAGESHARE_CNGHTTP2_H
#define PAGESHARE_CNGHTTP2_H
#include <nghttp2/nghttp2.h>
#endif
