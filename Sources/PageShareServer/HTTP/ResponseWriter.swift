import NIOCore

/// Where one response goes: an HTTP/1.1 connection (``HTTP1RequestHandler``) or one HTTP/2 stream
/// (``HTTP2Stream``). A ``RequestResponder`` writes through it without knowing which. Used on the
/// connection's event loop only.
protocol ResponseWriter: AnyObject {
    /// Whether another body chunk may be written now. When it turns true again the writer calls
    /// ``RequestResponder/writabilityChanged()``.
    var isWritable: Bool { get }
    /// The connection's share of the daemon's unsent-bytes budget (nil: unbounded, for tests).
    var allowance: SendAllowance? { get }
    func writeHead(_ head: ResponseHead)
    /// Writes body bytes; `notice` is told when they have been written to the connection (or failed to be).
    func writeBody(_ bytes: ByteBuffer, notice: WriteNotice?)
    /// Ends the response and flushes. HTTP/1.1 closes the connection after it unless `keepAlive`.
    func writeEnd(keepAlive: Bool)
    func flush()
    /// Ends a response whose head already went out without finishing its body, so that the client sees a
    /// truncated body, never wrong bytes: HTTP/1.1 closes the connection, HTTP/2 resets the stream.
    func abort()
}
