import CNGHTTP2

/// One server-side libnghttp2 session: framing, HPACK, the stream state machine, flow control and the
/// library's protections (rapid reset, CONTINUATION and SETTINGS floods, outbound ACK floods). Its
/// callbacks reach the connection (``HTTP2Connection``, which owns the session) through an unmanaged
/// pointer: no allocation or dynamic cast per frame. Not thread-safe: used from its connection's event loop
/// only, and never re-entered (``isBusy``).
final class NGHTTP2Session {
    private var session: OpaquePointer?
    /// Inside a call into the library: libnghttp2 is not re-entrant, so sends wait for the call to return.
    private(set) var isBusy = false

    struct Limits {
        var advertisedStreams: Int
        var maximumHeaderListSize: Int
        var initialWindowSize: Int
    }

    /// A session reporting to `connection`, which must outlive it.
    init(reportingTo connection: HTTP2Connection, limits: Limits) {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_send_callback(callbacks) { _, data, length, _, user in
            NGHTTP2Session.delegate(user) { $0.sessionSend(UnsafeRawBufferPointer(start: data, count: length)) }
            return length
        }
        nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, header, length, _, user in
            NGHTTP2Session.delegate(user) {
                $0.sessionSendData(
                    stream: frame!.pointee.hd.stream_id, header: UnsafeRawBufferPointer(start: header, count: 9),
                    length: length)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, user in
            let frame = frame!.pointee
            guard frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.headers.cat == NGHTTP2_HCAT_REQUEST else {
                return 0
            }
            return NGHTTP2Session.delegate(user) { $0.sessionBeginRequest(stream: frame.hd.stream_id) }
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, user in
            let frame = frame!.pointee
            guard frame.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), frame.headers.cat == NGHTTP2_HCAT_REQUEST else {
                return 0  // trailers: their fields mean nothing here
            }
            return NGHTTP2Session.delegate(user) {
                $0.sessionHeader(
                    stream: frame.hd.stream_id, name: UnsafeRawBufferPointer(start: name, count: nameLength),
                    value: UnsafeRawBufferPointer(start: value, count: valueLength))
            }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, user in
            let frame = frame!.pointee
            let endStream = frame.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            NGHTTP2Session.delegate(user) { delegate in
                switch UInt32(frame.hd.type) {
                case NGHTTP2_HEADERS.rawValue:
                    delegate.sessionFrameReceived(stream: frame.hd.stream_id, isHeaders: true, endStream: endStream)
                case NGHTTP2_DATA.rawValue:
                    delegate.sessionFrameReceived(stream: frame.hd.stream_id, isHeaders: false, endStream: endStream)
                case NGHTTP2_PING.rawValue where frame.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0:
                    delegate.sessionPingAcknowledged()
                default: break
                }
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, stream, data, length, user in
            NGHTTP2Session.delegate(user) {
                $0.sessionBody(stream: stream, bytes: UnsafeRawBufferPointer(start: data, count: length))
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, stream, code, user in
            NGHTTP2Session.delegate(user) { $0.sessionStreamClosed(stream: stream, errorCode: code) }
            return 0
        }
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // CONTINUATION floods: at most 5 CONTINUATION frames per header block; rapid reset (CVE-2023-44487):
        // the library's token bucket (200 RST_STREAM at once, 7 a second after) sends GOAWAY past it.
        nghttp2_option_set_max_continuations(option, 5)
        nghttp2_option_set_stream_reset_rate_limit(option, 200, 7)
        nghttp2_option_set_max_outbound_ack(option, 1000)
        nghttp2_option_set_max_settings(option, 32)
        let context = Unmanaged.passUnretained(connection).toOpaque()
        nghttp2_session_server_new2(&self.session, callbacks, context, option)
        let settings = [
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue),
                value: UInt32(limits.advertisedStreams)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue),
                value: UInt32(limits.maximumHeaderListSize)),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue),
                value: UInt32(limits.initialWindowSize)),
        ]
        nghttp2_submit_settings(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), settings, settings.count)
    }

    deinit { nghttp2_session_del(self.session) }

    /// Calls `body` with the connection behind a callback's context pointer, without a retain and release
    /// per callback: the connection owns the session and is inside a call into it whenever a callback runs.
    private static func delegate<Result>(
        _ user: UnsafeMutableRawPointer?, _ body: (HTTP2Connection) -> Result
    ) -> Result {
        Unmanaged<HTTP2Connection>.fromOpaque(user!)._withUnsafeGuaranteedRef(body)
    }

    /// Feeds received bytes; false when the connection must end: a GOAWAY is queued (by the library, or
    /// here for the errors it only reports — ENHANCE_YOUR_CALM for a flood, PROTOCOL_ERROR otherwise).
    func receive(_ bytes: UnsafeRawBufferPointer) -> Bool {
        self.isBusy = true
        defer { self.isBusy = false }
        let read = nghttp2_session_mem_recv(
            self.session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        guard read < 0 else { return true }
        let flooded =
            read == NGHTTP2_ERR_FLOODED.rawValue || read == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue
        nghttp2_session_terminate_session(
            self.session, flooded ? NGHTTP2_ENHANCE_YOUR_CALM.rawValue : NGHTTP2_PROTOCOL_ERROR.rawValue)
        return false
    }

    /// Sends what the session has to send (through the delegate); false on a fatal error.
    @discardableResult
    func send() -> Bool {
        guard !self.isBusy else { return true }
        self.isBusy = true
        defer { self.isBusy = false }
        return nghttp2_session_send(self.session) == 0
    }

    /// Whether the session has frames to send.
    var wantsToWrite: Bool { nghttp2_session_want_write(self.session) != 0 }

    /// Whether the session is over: nothing more to read or write (after a GOAWAY both ways, or an error).
    var isFinished: Bool {
        nghttp2_session_want_read(self.session) == 0 && nghttp2_session_want_write(self.session) == 0
    }

    /// Submits a response on `stream`: `fields` (`:status` first), then a body read through the delegate
    /// unless `hasBody` is false (END_STREAM on the HEADERS frame).
    func respond(_ stream: Int32, fields: HTTP2ResponseFields, hasBody: Bool) {
        fields.withHeaderList { list in
            if hasBody {
                var provider = nghttp2_data_provider()
                provider.read_callback = { _, stream, _, length, flags, _, user in
                    let ready = NGHTTP2Session.delegate(user) { $0.sessionBodyReady(stream: stream, maximum: length) }
                    guard let (count, end) = ready else { return ssize_t(NGHTTP2_ERR_DEFERRED.rawValue) }
                    flags!.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
                    if end { flags!.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
                    return count
                }
                nghttp2_submit_response(self.session, stream, list.baseAddress, list.count, &provider)
            } else {
                nghttp2_submit_response(self.session, stream, list.baseAddress, list.count, nil)
            }
        }
    }

    /// More body bytes of `stream` are ready (after ``HTTP2Connection/sessionBodyReady(stream:maximum:)`` said none).
    func resume(_ stream: Int32) { nghttp2_session_resume_data(self.session, stream) }

    func reset(_ stream: Int32, code: UInt32) {
        nghttp2_submit_rst_stream(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream, code)
    }

    /// The first step of a graceful shutdown (RFC 9113 §6.8): a GOAWAY naming the last possible stream,
    /// and a PING whose acknowledgement tells that the client has seen it.
    func announceShutdown() {
        nghttp2_submit_shutdown_notice(self.session)
        nghttp2_submit_ping(self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// The last GOAWAY: streams after the last one the session processed are refused.
    func goAway() {
        nghttp2_submit_goaway(
            self.session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(self.session),
            NGHTTP2_NO_ERROR.rawValue, nil, 0)
    }
}
