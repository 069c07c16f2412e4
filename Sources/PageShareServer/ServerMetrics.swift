import Metrics
import NIOCore
import NIOHTTP1
import Synchronization

/// The data plane's swift-metrics series, created up front so that a request only indexes arrays: requests
/// by route and exact status code, body bytes sent, request duration (a histogram whose buckets suit
/// sub-millisecond hits), open connections by protocol, failed authentications by reason. Labels are bounded:
/// seven routes, 25 statuses, four reasons; never a token or a file.
public final class ServerMetrics: Sendable {
    /// What a request asked for, as a metrics label.
    enum Endpoint: Int, CaseIterable {
        case files, stat, dirs, admin, metrics, health, other

        var label: String {
            switch self {
            case .files: "files"
            case .stat: "stat"
            case .dirs: "dirs"
            case .admin: "admin"
            case .metrics: "metrics"
            case .health: "health"
            case .other: "other"
            }
        }
    }

    /// The statuses the server answers with, each its own `status` label value; `aborted` (a body cut short)
    /// comes after them. A code outside the list (none is sent today) is counted under `other`.
    static let statusCodes: [UInt] = [
        200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 406, 409, 412, 413, 414, 416, 417, 422, 429, 431, 500,
        501, 503,
    ]
    static let statusLabels = ServerMetrics.statusCodes.map(String.init) + ["other", "aborted"]
    /// `statusLabels` index by code (100...599), so that recording a request is an array lookup.
    private static let statusIndex: [Int] = (0..<600).map { code in
        ServerMetrics.statusCodes.firstIndex(of: UInt(code)) ?? ServerMetrics.statusCodes.count
    }

    private let requests: [[Counter]]
    private let sentBytes: [Counter]
    private let durations: [Timer]
    private let connections: [String: Gauge]
    private let openConnections: Mutex<[String: Int]> = Mutex([:])
    private let streams: Gauge
    private let authFailures: [AuthFailure: Counter]
    private let openStreams = Atomic<Int>(0)
    private let unsentBytes: Gauge
    private let borrowedBytes: Gauge
    private let sendTimeouts: Counter
    private let sendTimeoutsPublished = Atomic<Int>(0)
    private let failedImages: Gauge

    /// Why a request was refused before routing, as a metrics label.
    enum AuthFailure: String, CaseIterable {
        /// No token (and no unix peer mapping).
        case missing
        /// A token that matches no entry, or a malformed `Authorization` header.
        case invalid
        /// A valid token without the role the route needs.
        case forbidden
        /// The client failed too often (429).
        case rateLimited = "rate_limited"
    }

    init(factory: any MetricsFactory) {
        self.authFailures = Dictionary(
            uniqueKeysWithValues: AuthFailure.allCases.map {
                (
                    $0,
                    Counter(
                        label: "pageshare_http_auth_failures_total", dimensions: [("reason", $0.rawValue)],
                        factory: factory)
                )
            })
        self.requests = Endpoint.allCases.map { route in
            Self.statusLabels.map { status in
                Counter(
                    label: "pageshare_http_requests_total", dimensions: [("route", route.label), ("status", status)],
                    factory: factory)
            }
        }
        self.sentBytes = Endpoint.allCases.map {
            Counter(label: "pageshare_http_sent_bytes_total", dimensions: [("route", $0.label)], factory: factory)
        }
        self.durations = Endpoint.allCases.map {
            Timer(
                label: "pageshare_http_request_duration_seconds", dimensions: [("route", $0.label)],
                preferredDisplayUnit: .seconds, factory: factory)
        }
        self.connections = Dictionary(
            uniqueKeysWithValues: ["http/1.1", "h2"].map {
                ($0, Gauge(label: "pageshare_http_open_connections", dimensions: [("protocol", $0)], factory: factory))
            })
        self.streams = Gauge(label: "pageshare_http_open_streams", dimensions: [("protocol", "h2")], factory: factory)
        self.unsentBytes = Gauge(label: "pageshare_http_unsent_bytes", factory: factory)
        self.borrowedBytes = Gauge(label: "pageshare_http_unsent_borrowed_bytes", factory: factory)
        self.sendTimeouts = Counter(label: "pageshare_http_send_timeouts_total", factory: factory)
        self.failedImages = Gauge(label: "pageshare_images_failed", factory: factory)
    }

    /// Publishes the number of images listed as `failed` (configured or saved, not attached).
    func publishFailedImages(_ count: Int) { self.failedImages.record(count) }

    /// Publishes the send budget's figures (at scrape time: they change with every body chunk).
    func publish(_ budget: SendBudget) {
        self.unsentBytes.record(budget.heldBytes)
        self.borrowedBytes.record(budget.borrowedBytes)
        let timeouts = budget.sendTimeouts
        let published = self.sendTimeoutsPublished.exchange(timeouts, ordering: .relaxed)
        if timeouts > published { self.sendTimeouts.increment(by: timeouts - published) }
    }

    /// Buckets for `pageshare_http_request_duration_seconds`: from 50 µs (a cache hit) to 10 s.
    public static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
        .seconds(10),
    ]

    /// Records one finished request.
    func record(route: Endpoint, status: HTTPResponseStatus?, sentBytes: Int, started: NIODeadline) {
        let statusIndex = status.map { Self.statusIndex[min(599, Int($0.code))] } ?? Self.statusLabels.count - 1
        self.requests[route.rawValue][statusIndex].increment()
        if sentBytes > 0 { self.sentBytes[route.rawValue].increment(by: sentBytes) }
        self.durations[route.rawValue].recordNanoseconds((NIODeadline.now() - started).nanoseconds)
    }

    /// Counts a refused authentication.
    func authFailed(_ reason: AuthFailure) { self.authFailures[reason]?.increment() }

    /// Counts a connection of `protocolName` (`http/1.1` or `h2`) open until `channel` closes.
    func connectionOpened(_ protocolName: String, closing channel: any Channel) {
        self.adjust(protocolName, by: 1)
        channel.closeFuture.whenComplete { _ in self.adjust(protocolName, by: -1) }
    }

    /// Counts an HTTP/2 stream open until ``streamClosed()``.
    func streamOpened() {
        self.streams.record(self.openStreams.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    func streamClosed() {
        self.streams.record(self.openStreams.wrappingSubtract(1, ordering: .relaxed).newValue)
    }

    private func adjust(_ protocolName: String, by delta: Int) {
        let value = self.openConnections.withLock { counts -> Int in
            counts[protocolName, default: 0] += delta
            return counts[protocolName]!
        }
        self.connections[protocolName]?.record(value)
    }
}
