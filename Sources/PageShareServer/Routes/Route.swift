/// What a request asks for, parsed once from its target.
///
/// A target that names no resource or does not parse is kept as ``refused(_:)`` rather than thrown: it is
/// answered after authentication, like any other request, so that an unauthenticated client learns nothing
/// from it but that it must authenticate.
enum Route: Equatable {
    /// `/healthz`: alive.
    case health
    /// `/readyz`: state restored, listeners up.
    case ready
    /// `/metrics`: the Prometheus exposition.
    case metrics
    /// `/v1/admin/...`: the percent-decoded path segments after `/v1/admin`, or why they do not parse (a
    /// bad request answered to admins only, like every other admin answer).
    case admin(Result<[String], RequestTarget.Failure>)
    /// `/v1/images/{image}/{files|stat|dirs}/{path}`.
    case data(RequestTarget)
    /// No such resource (404), or a target that does not parse (400).
    case refused(RequestTarget.Failure)

    /// Parses `target` (origin form: path and query).
    static func parse(_ target: String) -> Route {
        // The data API's prefix first, by bytes: it is nearly every request, and none of the others.
        if !target.hasUTF8Prefix("/v1/images/") {
            // By UTF-8 bytes: looking for "?" by Characters walks grapheme clusters.
            let path = Substring(target.utf8.prefix(while: { $0 != UInt8(ascii: "?") }))
            switch path {
            case "/healthz": return .health
            case "/readyz": return .ready
            case "/metrics": return .metrics
            default: break
            }
            if path == "/v1/admin" || path.utf8.starts(with: "/v1/admin/".utf8) {
                return .admin(Result { () throws(RequestTarget.Failure) in try RequestTarget.adminSegments(target) })
            }
        }
        do {
            return .data(try RequestTarget.parse(target))
        } catch {
            return .refused(error)
        }
    }

    /// Whether the route is one of the operations endpoints (probes and metrics), which answer GET and HEAD
    /// only and whatever the caller.
    var isOperations: Bool {
        switch self {
        case .health, .ready, .metrics: true
        default: false
        }
    }

    /// The `route` label of the request metrics.
    var endpoint: ServerMetrics.Endpoint {
        switch self {
        case .health, .ready: .health
        case .metrics: .metrics
        case .admin: .admin
        case .data(let target):
            switch target.resource {
            case .files: .files
            case .stat: .stat
            case .dirs: .dirs
            }
        case .refused: .other
        }
    }
}
