import NIOHTTP1

/// The admin API's routes as a table: a path pattern of the segments after `/v1/admin` (`*` matches any one
/// segment, handed to the handler) and a handler per method. A path no pattern matches is answered 404; a
/// method a matching route does not take, 405 with the ones it does in `Allow`.
struct AdminRouter: Sendable {
    /// What a handler gets: the segments `*` matched, in order, and the request body.
    struct Call: Sendable {
        var captures: [String]
        var body: [UInt8]
    }

    /// Throws ``Problem`` only (the closures' error type is not inferred as typed; ``AdminAPI/handle`` checks).
    typealias Handler = @Sendable (AdminAPI, Call) async throws -> AdminAPI.Reply

    struct Route: Sendable {
        let pattern: [String]
        let methods: [(method: HTTPMethod, handler: Handler)]

        init(_ pattern: String, _ methods: [(HTTPMethod, Handler)]) {
            self.pattern = pattern.split(separator: "/").map(String.init)
            self.methods = methods.map { (method: $0.0, handler: $0.1) }
        }

        /// The segments `*` matched, if `segments` match the pattern.
        func match(_ segments: [String]) -> [String]? {
            guard segments.count == self.pattern.count else { return nil }
            var captures: [String] = []
            for (segment, expected) in zip(segments, self.pattern) {
                if expected == "*" {
                    captures.append(segment)
                } else if segment != expected {
                    return nil
                }
            }
            return captures
        }
    }

    let routes: [Route]

    /// The handler for `method` on `segments`, with what it is called with.
    func route(method: HTTPMethod, segments: [String], body: [UInt8]) throws(Problem) -> (Handler, Call) {
        for route in self.routes {
            guard let captures = route.match(segments) else { continue }
            guard let handler = route.methods.first(where: { $0.method == method })?.handler else {
                throw Problem.methodNotAllowed(
                    method, allowed: route.methods.map { "\($0.method)" }.joined(separator: ", "))
            }
            return (handler, Call(captures: captures, body: body))
        }
        throw Problem("no-route", .notFound, "no admin resource at /v1/admin/\(segments.joined(separator: "/"))")
    }

    /// The admin API: `openapi.yaml` describes each of these.
    static let api = AdminRouter(routes: [
        Route(
            "images",
            [
                (.GET, { api, _ in try await api.listImages() }),
                (.POST, { api, call in try await api.attach(call.body) }),
            ]),
        Route(
            "images/*",
            [
                (.GET, { api, call in try await api.image(call.captures[0]) }),
                (.DELETE, { api, call in try await api.detach(call.captures[0]) }),
            ]),
        Route("images/*/pages", [(.DELETE, { api, call in try api.dropPages(image: call.captures[0]) })]),
        Route("domains", [(.GET, { api, _ in try api.listDomains() })]),
        Route("domains/*", [(.GET, { api, call in try api.domainStatus(call.captures[0]) })]),
        Route(
            "domains/*/quota",
            [
                (.PUT, { api, call in try await api.setQuota(domain: call.captures[0], body: call.body) }),
                (.DELETE, { api, call in try await api.setQuota(domain: call.captures[0], body: nil) }),
            ]),
        Route("domains/*/pages", [(.DELETE, { api, call in try api.dropPages(domain: call.captures[0]) })]),
        Route("cache", [(.GET, { api, _ in try api.cacheStatus() })]),
    ])
}
