import Foundation

/// Targets of admin-API resources, with ids and domain names percent-encoded as one path segment: the
/// server's `Location` headers and `pageshare admin` build them the same way.
public enum AdminPath {
    /// `/v1/admin/images/{id}`.
    public static func image(_ id: String) -> String { "/v1/admin/images/" + Self.segment(id) }

    /// `/v1/admin/domains/{domain}`.
    public static func domain(_ name: String) -> String { "/v1/admin/domains/" + Self.segment(name) }

    private static func segment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? text
    }
}
