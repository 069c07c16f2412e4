import EROFS
import EROFSTestSupport
import Foundation
import Logging
import NIOCore
import PageCache
import Testing

@testable import PageShareServer

/// Tokens, roles and tenant isolation against a real server.
@Suite("Authentication and tenants", .serialized)
struct AuthTests {
    static let adminToken = "admin-0123456789abcdef"
    static let tenantAToken = "tenant-a-0123456789"
    static let tenantABToken = "tenant-ab-0123456789"

    /// A tokens file: one admin, a tenant of domain `a`, a tenant of `a` and `b`; `extra` lines appended.
    static func writeTokens(_ path: String, extra: String = "") throws {
        let text = """
            tokens:
              - name: operator
                sha256: \(AccessTokens.hash(Self.adminToken))
                role: admin
              - name: team-a
                sha256: \(AccessTokens.hash(Self.tenantAToken))
                role: tenant
                domains: [a]
              - name: team-ab
                sha256: \(AccessTokens.hash(Self.tenantABToken))
                role: tenant
                domains: [a, b]
            \(extra)
            """
        try TestTree.write(path, Array(text.utf8))
    }

    static func server(
        extraTokens: String = "", maximumFailures: Int = 10
    ) async throws -> (ServerFixture, TestImage, AccessPolicy) {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        let tokens = image.directory.path + "/tokens.yaml"
        try Self.writeTokens(tokens, extra: extraTokens)
        let access = try AccessPolicy(tokensPath: tokens, maximumFailures: maximumFailures)
        let opened = try image.open()
        let server = try await ServerFixture.start(
            [("ia", opened, "a", .digest), ("ib", opened, "b", .digest), ("ic", opened, "c", .digest)],
            access: access)
        return (server, image, access)
    }

    @Test("isolation matrix: token × image × endpoint; other tenants' images are 404 exactly like missing ones")
    func isolationMatrix() async throws {
        let (server, image, _) = try await Self.server()
        defer { image.remove() }
        let visible: [String?: Set<String>] = [
            Self.adminToken: ["ia", "ib", "ic"], Self.tenantAToken: ["ia"], Self.tenantABToken: ["ia", "ib"],
        ]
        let endpoints = ["files/page", "stat/page", "dirs/"]
        for (token, images) in visible {
            for id in ["ia", "ib", "ic", "nonexistent"] {
                for endpoint in endpoints {
                    for transport in [ServerFixture.Transport.http1, .http2] {
                        let response = try await server.get(
                            "/v1/images/\(id)/\(endpoint)", over: transport,
                            headers: ["authorization": "Bearer \(token!)"])
                        if images.contains(id) {
                            #expect(response.status == 200, "\(id)/\(endpoint)")
                        } else {
                            #expect(response.status == 404, "\(id)/\(endpoint) must not be visible")
                            #expect(response.problemType == "urn:pageshare:problem:unknown-image")
                            #expect(response.bodyText.contains("no image \(id) is attached"), "no hint it exists")
                        }
                    }
                }
            }
            let admin = try await server.send("GET", "/v1/admin/images", token: token)
            #expect(admin.status == (token == Self.adminToken ? 200 : 403), "admin API for \(token!)")
            let metrics = try await server.send("GET", "/metrics", token: token)
            #expect(metrics.status == (token == Self.adminToken ? 200 : 403), "/metrics for \(token!)")
        }
        let file = try await server.get(
            "/v1/images/ia/files/page", headers: ["authorization": "Bearer \(Self.tenantAToken)"])
        #expect(file.body == ServedTree.content("page"))
        await server.stop()
    }

    @Test("401 without or with a wrong token (WWW-Authenticate), health probes open, 403 counted, metrics by reason")
    func failures() async throws {
        let (server, image, _) = try await Self.server(maximumFailures: 100)
        defer { image.remove() }
        for target in ["/v1/images/ia/files/page", "/v1/admin/images", "/metrics"] {
            let missing = try await server.get(target)
            #expect(missing.status == 401 && missing.header("www-authenticate") == #"Bearer realm="pageshare""#)
            let wrong = try await server.get(target, headers: ["authorization": "Bearer not-a-token"])
            #expect(wrong.status == 401 && wrong.problemType == "urn:pageshare:problem:unauthorized")
        }
        for header in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer  \(Self.adminToken)x", Self.adminToken] {
            #expect(
                try await server.get("/v1/admin/cache", headers: ["authorization": header]).status == 401, "\(header)")
        }
        #expect(
            try await server.get("/v1/admin/cache", headers: ["authorization": "bearer \(Self.adminToken)"]).status
                == 200)
        #expect(try await server.get("/healthz").status == 200)
        #expect(try await server.get("/readyz").status == 200)
        #expect(try await server.send("DELETE", "/v1/admin/images/ia", token: Self.tenantAToken).status == 403)
        #expect(server.cache.registry.imageIDs == ["ia", "ib", "ic"], "a tenant detached nothing")
        let metrics = try await server.send("GET", "/metrics", token: Self.adminToken).bodyText
        #expect(MetricsEndpointTests.value(metrics, #"pageshare_http_auth_failures_total{reason="missing"}"#) == 3)
        #expect(MetricsEndpointTests.value(metrics, #"pageshare_http_auth_failures_total{reason="invalid"}"#) == 7)
        #expect(MetricsEndpointTests.value(metrics, #"pageshare_http_auth_failures_total{reason="forbidden"}"#) == 1)
        #expect(
            !metrics.contains(Self.adminToken) && !metrics.contains("operator"), "no token or token name in metrics")
        await server.stop()
    }

    @Test("publicMetrics: /metrics without a token; everything else still needs one")
    func publicMetrics() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let tokens = image.directory.path + "/tokens.yaml"
        try Self.writeTokens(tokens)
        let server = try await ServerFixture.start(
            [("ia", try image.open(), "a", .none)],
            access: try AccessPolicy(tokensPath: tokens, publicMetrics: true))
        let metrics = try await server.get("/metrics")
        #expect(metrics.status == 200 && metrics.bodyText.contains("pageshare_cache_budget_bytes"))
        #expect(try await server.send("GET", "/metrics", token: Self.tenantAToken).status == 200)
        #expect(try await server.get("/v1/images/ia/files/page").status == 401)
        #expect(try await server.get("/v1/admin/cache").status == 401)
        await server.stop()
    }

    @Test("rate limit: after N failures a client's failures get 429 with Retry-After; a valid token still passes")
    func rateLimit() async throws {
        let (server, image, access) = try await Self.server(maximumFailures: 3)
        defer { image.remove() }
        for _ in 0..<3 {
            #expect(try await server.send("GET", "/v1/admin/cache").status == 401)
        }
        let limited = try await server.send("GET", "/v1/admin/cache", token: "guess")
        #expect(limited.status == 429 && limited.problemType == "urn:pageshare:problem:too-many-auth-failures")
        #expect(Int(limited.header("retry-after") ?? "") ?? 0 > 0)
        #expect(try await server.send("GET", "/v1/admin/cache").status == 429)
        // Credentials are checked first: a shared address (NAT, one uid on the unix socket) that others
        // failed from does not lock out a valid token.
        #expect(try await server.send("GET", "/v1/admin/cache", token: Self.adminToken).status == 200)
        #expect(
            try await server.get("/v1/images/ia/files/page", headers: ["authorization": "Bearer \(Self.tenantAToken)"])
                .status == 200)
        // The limiter's window: a client is free again once it has passed.
        let later = NIODeadline.now() + .seconds(61)
        #expect(access.limiter.retryAfter(client: "127.0.0.1") != nil)
        #expect(access.limiter.retryAfter(client: "127.0.0.1", now: later) == nil)
        await server.stop()
    }

    @Test("two Authorization fields are 400, not the first one believed")
    func repeatedAuthorization() async throws {
        let (server, image, _) = try await Self.server()
        defer { image.remove() }
        let response = try await server.get(
            "/v1/admin/cache",
            arguments: ["-H", "Authorization: Bearer \(Self.adminToken)", "-H", "Authorization: Bearer x"])
        #expect(response.status == 400 && response.bodyText.contains("more than one Authorization"))
        await server.stop()
    }

    @Test("a flood of new addresses does not free a limited client, and the table stays bounded")
    func limiterTableFlood() {
        let limiter = FailedAuthLimiter(maximumFailures: 3)
        for _ in 0..<3 { limiter.recordFailure(client: "offender") }
        #expect(limiter.retryAfter(client: "offender") != nil)
        for index in 0..<25_000 { limiter.recordFailure(client: "flood-\(index)") }
        #expect(limiter.retryAfter(client: "offender") != nil, "still limited after 25,000 other addresses failed")
        #expect(limiter.trackedClients <= 10_000)
    }

    @Test("SIGHUP reload: a new token works, a removed one stops working, a broken file keeps the old tokens")
    func reload() async throws {
        let (server, image, access) = try await Self.server()
        defer { image.remove() }
        let path = try #require(access.tokensPath)
        #expect(try await server.send("GET", "/v1/admin/cache", token: "rotated-admin-token").status == 401)
        try TestTree.write(
            path,
            Array(
                """
                tokens:
                  - {name: rotated, sha256: \(AccessTokens.hash("rotated-admin-token")), role: admin}
                """.utf8))
        try access.reload()
        #expect(try await server.send("GET", "/v1/admin/cache", token: "rotated-admin-token").status == 200)
        #expect(try await server.send("GET", "/v1/admin/cache", token: Self.adminToken).status == 401)
        try TestTree.write(path, Array("tokens: [{name: x, sha256: nothex, role: admin}]".utf8))
        #expect(throws: AccessTokensError.self) { try access.reload() }
        #expect(try await server.send("GET", "/v1/admin/cache", token: "rotated-admin-token").status == 200)
        await server.stop()
    }

    @Test("unix socket peers: a uid mapped to a tenant reads its domain without a token; a token still wins")
    func unixPeerMapping() async throws {
        let extra = """
            unixPeers:
              - uid: \(getuid())
                role: tenant
                domains: [b]
            """
        let (server, image, _) = try await Self.server(extraTokens: extra)
        defer { image.remove() }
        #expect(try await server.get("/v1/images/ib/files/page", over: .unixHTTP1).status == 200)
        #expect(try await server.get("/v1/images/ia/files/page", over: .unixHTTP2).status == 404)
        #expect(try await server.get("/v1/admin/images", over: .unixHTTP1).status == 403)
        let withToken = try await server.send(
            "GET", "/v1/images/ia/files/page", token: Self.tenantAToken, over: .unixHTTP1)
        #expect(withToken.status == 200)
        #expect(try await server.get("/v1/images/ib/files/page").status == 401, "TCP clients have no peer mapping")
        await server.stop()
    }

    @Test("without tokens: loopback and unix only, unless explicitly allowed")
    func openDaemonStaysLocal() async throws {
        let cache = try SharedPageCache(configuration: .init(budgetBytes: 1 << 20))
        let plane = DataPlane(cache: cache, logger: .init(label: "test"))
        let remote = try DataPlaneServer(
            configuration: .init(listeners: [.tcp(host: "0.0.0.0", port: 0)], threads: 1), plane: plane)
        await #expect(throws: ServerStartError.self) { try await remote.start() }
        await remote.shutdown()
        let allowed = try DataPlaneServer(
            configuration: .init(
                listeners: [.tcp(host: "0.0.0.0", port: 0)], threads: 1, allowUnauthenticatedRemote: true),
            plane: plane)
        try await allowed.start()
        #expect(allowed.boundAddresses.count == 1)
        await allowed.shutdown()
        let directory = try TemporaryDirectory("tokens")
        defer { directory.remove() }
        try Self.writeTokens(directory.path + "/tokens.yaml")
        let withTokens = DataPlane(
            cache: cache, access: try AccessPolicy(tokensPath: directory.path + "/tokens.yaml"),
            logger: .init(label: "test"))
        let authenticated = try DataPlaneServer(
            configuration: .init(listeners: [.tcp(host: "0.0.0.0", port: 0)], threads: 1), plane: withTokens)
        try await authenticated.start()
        await authenticated.shutdown()
    }

    @Test("tokens file errors name the entry and the reason")
    func tokensFileErrors() throws {
        let hash = AccessTokens.hash("x")
        let cases: [(String, String)] = [
            ("tokens: [{name: a, sha256: abc, role: admin}]", "tokens[0] (a): sha256 must be 64 hex digits"),
            ("tokens: [{name: a, sha256: \(hash), role: tenant}]", "a tenant needs one or more domains"),
            ("tokens: [{name: a, sha256: \(hash), role: admin, domains: [x]}]", "an admin reads every domain"),
            ("tokens: [{name: a, sha256: \(hash), role: root}]", "tokens[0].role"),
            (
                "tokens: [{name: a, sha256: \(hash), role: admin}, {name: b, sha256: \(hash), role: admin}]",
                "listed twice"
            ),
            ("tokens: [{name: a, role: admin}]", "tokens[0].sha256: missing"),
        ]
        for (yaml, message) in cases {
            #expect {
                _ = try AccessTokens(yaml: yaml, source: "t.yaml")
            } throws: { error in
                "\(error)".contains(message)
            }
        }
        let tokens = try AccessTokens(yaml: "tokens: [{name: a, sha256: \(hash), role: admin}]", source: "t.yaml")
        #expect(tokens.caller(forToken: "x") == .admin(name: "a"))
        #expect(tokens.caller(forToken: "y") == nil && tokens.caller(forToken: "") == nil)
    }
}
