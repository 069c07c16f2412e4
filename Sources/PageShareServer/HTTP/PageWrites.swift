/// How a connection sends the cache's resident pages.
///
/// Lent pages (``PageCache/PageLoan``) reach the socket without a copy, but each page is one write. Cleartext
/// HTTP/1.1 gathers the writes of a chunk into one `writev`, so lending is free there. HTTP/2 turns each
/// write into a DATA frame and TLS into a record, and their per-write cost outweighs a memcpy for pages
/// smaller than a 16 KiB frame: bench/http.sh, 1 MiB ranges over h2c with 4 KiB pages, ran at half the
/// requests/s when lending (1,255 vs 2,495 req/s). There the lent pages are copied into one buffer per chunk
/// (outside any cache lock; the loan ends at once).
enum PageWrites: Sendable {
    case lend
    case copy

    /// The choice for a connection: lend on cleartext HTTP/1.1, or when a page fills a whole DATA frame or
    /// TLS record.
    static func forConnection(http2: Bool, tls: Bool, pageSize: Int) -> PageWrites {
        (!http2 && !tls) || pageSize >= 16 * 1024 ? .lend : .copy
    }
}
