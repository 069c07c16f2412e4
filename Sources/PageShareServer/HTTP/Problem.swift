import NIOHTTP1

/// An error response body in the `application/problem+json` form of RFC 9457, with a stable `type`.
struct Problem: Error, Encodable {
    /// A stable URI naming the kind of problem (`urn:pageshare:problem:<name>`), for clients to switch on.
    var type: String
    var title: String
    var status: Int
    var detail: String
    var instance: String?
    /// Headers the response needs besides the body (`Allow`, `Retry-After`, `WWW-Authenticate`).
    var headers: HTTPHeaders = [:]

    private enum CodingKeys: String, CodingKey { case type, title, status, detail, instance }

    init(_ name: String, _ status: HTTPResponseStatus, _ detail: String, instance: String? = nil) {
        self.type = "urn:pageshare:problem:" + name
        self.title = status.reasonPhrase
        self.status = Int(status.code)
        self.detail = detail
        self.instance = instance
    }

    var responseStatus: HTTPResponseStatus { HTTPResponseStatus(statusCode: self.status) }

    static func badRequest(_ detail: String) -> Problem { Problem("bad-request", .badRequest, detail) }
    static func noRoute() -> Problem {
        Problem("no-route", .notFound, "no such resource; files are at /v1/images/{image}/files/{path}")
    }
    static func unknownImage(_ id: String) -> Problem {
        Problem("unknown-image", .notFound, "no image \(id) is attached")
    }
    static func notFound(_ detail: String) -> Problem { Problem("not-found", .notFound, detail) }
    static func methodNotAllowed(_ method: HTTPMethod, allowed: String = "GET, HEAD") -> Problem {
        var problem = Problem("method-not-allowed", .methodNotAllowed, "\(method) is not allowed here; use \(allowed)")
        problem.headers.add(name: "allow", value: allowed)
        return problem
    }
    static func unauthorized(_ detail: String) -> Problem {
        var problem = Problem("unauthorized", .unauthorized, detail)
        problem.headers.add(name: "www-authenticate", value: "Bearer realm=\"pageshare\"")
        return problem
    }
    static func forbidden(_ detail: String) -> Problem { Problem("forbidden", .forbidden, detail) }
    static func tooManyFailures(retryAfter seconds: Int) -> Problem {
        var problem = Problem(
            "too-many-auth-failures", .tooManyRequests,
            "too many failed authentications from this client; retry in \(seconds) s")
        problem.headers.add(name: "retry-after", value: String(seconds))
        return problem
    }
    static func imageChanged(_ detail: String) -> Problem {
        Problem("image-changed", .serviceUnavailable, detail + "; detach and attach it again to serve the new file")
    }
    static func imageReadError(_ detail: String) -> Problem {
        Problem("image-read-error", .internalServerError, detail)
    }

    /// The JSON body.
    func encoded() -> [UInt8] { (try? JSONBody.encode(self)) ?? Array("{}".utf8) }
}
