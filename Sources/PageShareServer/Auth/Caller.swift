/// Who sent a request, once authenticated.
public enum Caller: Sendable, Hashable {
    /// May read every image and use the admin API (also every caller when no tokens are configured).
    case admin(name: String)
    /// May read the images of its domains only; other images do not exist for it (404).
    case tenant(name: String, domains: Set<String>)

    /// The token's (or peer mapping's) name, for logs; never the secret.
    public var name: String {
        switch self {
        case .admin(let name), .tenant(let name, _): name
        }
    }

    public var isAdmin: Bool {
        if case .admin = self { return true }
        return false
    }

    /// Whether this caller may see images of `domain`.
    public func canRead(domain: String) -> Bool {
        switch self {
        case .admin: true
        case .tenant(_, let domains): domains.contains(domain)
        }
    }
}
