import Foundation
import Logging
import NIOPosix
import Synchronization

/// Who may do what: the tokens (reloadable), whether `/metrics` is public, and the failed-auth limiter.
///
/// With no tokens file the daemon is *open*: every caller is an admin. ``DataPlaneServer`` then refuses
/// non-loopback TCP listeners unless explicitly allowed.
public final class AccessPolicy: Sendable {
    /// The tokens file; nil: open.
    public let tokensPath: String?
    /// `/metrics` without a token (for scrapers on a trusted network); otherwise it needs the admin role.
    public let publicMetrics: Bool
    /// The tokens, replaced whole on reload; `generation` counts the replacements so that each thread can
    /// keep a copy and take the lock only after a reload (a request costs one atomic load, no shared lock).
    private let tokens: Mutex<AccessTokens>
    private let generation = Atomic<Int>(0)
    private let snapshots = ThreadSpecificVariable<TokenSnapshot>()
    let limiter: FailedAuthLimiter

    /// Everyone is an admin: for a daemon reachable from loopback (and its unix socket) only.
    public static func open() -> AccessPolicy {
        AccessPolicy(tokensPath: nil, tokens: AccessTokens(), publicMetrics: true, limiter: FailedAuthLimiter())
    }

    /// Reads the tokens file at `tokensPath`.
    /// - Throws: ``AccessTokensError``.
    public convenience init(
        tokensPath: String, publicMetrics: Bool = false, maximumFailures: Int = 10
    ) throws(AccessTokensError) {
        self.init(
            tokensPath: tokensPath, tokens: try AccessTokens(contentsOf: tokensPath), publicMetrics: publicMetrics,
            limiter: FailedAuthLimiter(maximumFailures: maximumFailures))
    }

    private init(tokensPath: String?, tokens: AccessTokens, publicMetrics: Bool, limiter: FailedAuthLimiter) {
        self.tokensPath = tokensPath
        self.tokens = Mutex(tokens)
        self.publicMetrics = publicMetrics
        self.limiter = limiter
    }

    /// True when no tokens are configured.
    public var isOpen: Bool { self.tokensPath == nil }

    /// Reads the tokens file again (SIGHUP). A file that cannot be used leaves the tokens as they were.
    /// - Throws: ``AccessTokensError``.
    public func reload() throws(AccessTokensError) {
        guard let path = self.tokensPath else { return }
        let fresh = try AccessTokens(contentsOf: path)
        self.tokens.withLock { tokens in
            tokens = fresh
            self.generation.wrappingAdd(1, ordering: .releasing)
        }
    }

    /// This thread's copy of the tokens, refreshed after a reload.
    private var currentTokens: AccessTokens {
        let generation = self.generation.load(ordering: .acquiring)
        if let snapshot = self.snapshots.currentValue, snapshot.generation == generation { return snapshot.tokens }
        let (tokens, current) = self.tokens.withLock { ($0, self.generation.load(ordering: .relaxed)) }
        self.snapshots.currentValue = TokenSnapshot(generation: current, tokens: tokens)
        return tokens
    }

    /// The caller of a request with `authorization` (the header's value), on a unix socket with peer
    /// `peerUID`: a bearer token wins; without one, the peer mapping. Nil: unauthenticated.
    private func caller(authorization: String?, peerUID: UInt32?) -> Caller? {
        if let authorization {
            let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
            let token = parts[1].trimmingCharacters(in: .whitespaces)
            return self.currentTokens.caller(forToken: token)
        }
        if let peerUID { return self.currentTokens.caller(forPeerUID: peerUID) }
        return nil
    }

    /// The caller of a request, or the problem refusing it (401, 429). Credentials are checked first, so a
    /// valid one always passes, even from an address others failed from (a NAT, a uid on the unix socket);
    /// a failure counts towards the client's limit and in `pageshare_http_auth_failures_total`, and a
    /// limited client's failures get 429 instead of 401.
    func authenticate(
        authorization: String?, peer: ConnectionPeer, metrics: ServerMetrics, logger: Logger
    ) -> Result<Caller, Problem> {
        if self.isOpen { return .success(.admin(name: "open")) }
        if let caller = self.caller(authorization: authorization, peerUID: peer.uid) { return .success(caller) }
        if let seconds = self.limiter.retryAfter(client: peer.address) {
            metrics.authFailed(.rateLimited)
            return .failure(.tooManyFailures(retryAfter: seconds))
        }
        let reason: ServerMetrics.AuthFailure = authorization == nil ? .missing : .invalid
        metrics.authFailed(reason)
        // One warning when a client reaches the limit, not one line per failure (a guesser would flood the log).
        if self.limiter.recordFailure(client: peer.address) {
            logger.warning(
                "too many failed authentications: client refused for a while",
                metadata: ["client": "\(peer.address)", "reason": "\(reason.rawValue)"])
        } else {
            logger.debug(
                "authentication failed", metadata: ["client": "\(peer.address)", "reason": "\(reason.rawValue)"])
        }
        return .failure(
            .unauthorized(authorization == nil ? "a bearer token is required" : "the bearer token is not valid"))
    }
}

/// One thread's copy of the tokens and the generation it was taken at. `@unchecked Sendable`: each instance
/// lives in one thread's slot and is used by that thread only.
private final class TokenSnapshot: @unchecked Sendable {
    let generation: Int
    let tokens: AccessTokens

    init(generation: Int, tokens: AccessTokens) {
        self.generation = generation
        self.tokens = tokens
    }
}
