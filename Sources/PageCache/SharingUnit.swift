/// What content is shared by inside a fingerprint domain.
public enum SharingUnit: String, Sendable, CaseIterable, Codable {
    /// Files with equal fingerprints share their pages: what the kernel's page cache share does.
    case file
    /// Files are cut into content-defined chunks, and equal chunks (bytes compared) are held once: two
    /// versions of a file share what they have in common even when it moved. Equal files still share one
    /// chunk map.
    case chunk
}
