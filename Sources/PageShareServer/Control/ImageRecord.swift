import EROFS
import PageCache

/// An image to keep attached, as an operator asked for it: in the admin API's attach body, the
/// configuration file, and the state directory.
public struct ImageRecord: Codable, Sendable, Hashable {
    /// How the image's files are fingerprinted; `auto` picks `xattr` when the image carries ishare xattrs
    /// (the `ISHARE_XATTRS` compat bit) and `digest` otherwise.
    public enum Fingerprint: String, Codable, Sendable, CaseIterable {
        case auto, xattr, digest, none

        /// The cache's mode for `image`.
        public func mode(for image: Image) -> FingerprintMode {
            switch self {
            case .auto: image.superBlock.ishareXattrPrefixID != nil ? .xattr : .digest
            case .xattr: .xattr
            case .digest: .digest
            case .none: .none
            }
        }
    }

    public var id: String
    /// Absolute path of the image file.
    public var path: String
    public var domain: String
    public var fingerprint: Fingerprint
    /// Check each shared file against its fingerprint before other images use its pages.
    public var verify: Bool
    /// Extra devices (blobs) of chunk-based images, in device-table order.
    public var devices: [String]
    /// Read the whole image before attaching it (`pageshare check`: every inode, directory and extent, the
    /// sha256: fingerprints against the content) and refuse it with the problems found.
    public var check: Bool

    public init(
        id: String, path: String, domain: String = "default", fingerprint: Fingerprint = .auto, verify: Bool = false,
        devices: [String] = [], check: Bool = false
    ) {
        self.id = id
        self.path = path
        self.domain = domain
        self.fingerprint = fingerprint
        self.verify = verify
        self.devices = devices
        self.check = check
    }

    private enum CodingKeys: String, CodingKey { case id, path, domain, fingerprint, verify, devices, check }

    /// Decodes with the defaults of ``init(id:path:domain:fingerprint:verify:devices:check:)`` for absent keys.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decode(String.self, forKey: .id)
        self.path = try container.decode(String.self, forKey: .path)
        self.domain = try container.decodeIfPresent(String.self, forKey: .domain) ?? "default"
        self.fingerprint = try container.decodeIfPresent(Fingerprint.self, forKey: .fingerprint) ?? .auto
        self.verify = try container.decodeIfPresent(Bool.self, forKey: .verify) ?? false
        self.devices = try container.decodeIfPresent([String].self, forKey: .devices) ?? []
        self.check = try container.decodeIfPresent(Bool.self, forKey: .check) ?? false
    }

    /// Checks the fields a request or file can get wrong: the id (1–255 printable characters, no `/`), the
    /// domain name, absolute paths.
    /// - Throws: ``ControlError`` (`invalidRequest`) naming the field.
    public func validate() throws(ControlError) {
        guard Self.isValidID(self.id) else {
            throw ControlError(.invalidRequest, "id must be 1-255 printable characters without '/'")
        }
        guard (try? TrustDomain(self.domain)) != nil else {
            throw ControlError(.invalidRequest, "domain must be 1-255 printable ASCII characters")
        }
        for path in [self.path] + self.devices {
            // Byte-wise: `hasPrefix` compares characters, and "/" plus a combining mark is not the character "/".
            guard path.utf8.first == UInt8(ascii: "/") else {
                throw ControlError(.invalidRequest, "path \(path) must be absolute")
            }
            guard !path.utf8.contains(0) else { throw ControlError(.invalidRequest, "a path contains a NUL byte") }
        }
    }

    /// Whether `id` can name an image (it is a URL path segment and a log value).
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 255 && !id.utf8.contains(where: { $0 < 0x21 || $0 == 0x7F || $0 == 0x2F })
    }
}
