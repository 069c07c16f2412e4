/// How file bodies take the cache's resident pages: lent as views of the cache's memory
/// (``PageCache/PageLoan``, no copy, one write per page), or copied under the page's stripe lock into one
/// buffer per 64 KiB chunk.
///
/// Each write costs (a DATA frame on HTTP/2, an iovec and a promise on HTTP/1.1, a record on TLS), and with
/// 4 KiB pages 16 writes per chunk cost more than one memcpy; from 16 KiB pages (one full DATA frame) on,
/// lending is as fast and holds far less memory, since in-flight bytes are cache pages rather than copies.
/// bench/http.sh, 1 MiB ranges, ratio to nginx in the same run, lend vs copy:
/// - 4 KiB pages: h2c 0.66× vs 1.27×, HTTP/1.1 0.74× vs 1.29×;
/// - 16 KiB pages: h2c 1.32× vs 1.29×, HTTP/1.1 1.16× vs 1.21×, peak RSS 43 vs 198 MiB;
/// - 64 KiB pages: h2c 1.52× vs 1.31×, HTTP/1.1 1.28× vs 1.40× (same req/s), peak RSS 42 vs 227 MiB.
enum PageWrites: Sendable {
    case lend
    case copy

    /// Lend from 16 KiB pages on.
    init(pageSize: Int) {
        self = pageSize >= 16 * 1024 ? .lend : .copy
    }
}
