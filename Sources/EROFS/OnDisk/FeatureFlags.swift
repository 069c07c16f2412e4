/// `feature_compat` bits of `struct erofs_super_block`: a reader may ignore bits it does not know.
public struct CompatFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `sb_chksum`: the superblock block carries a crc32c.
    public static let superBlockChecksum = CompatFeatures(rawValue: 0x01)
    /// `mtime`: compact inodes carry an mtime relative to the epoch.
    public static let mtime = CompatFeatures(rawValue: 0x02)
    /// `xattr_filter`: inline xattr headers carry a bloom filter of names.
    public static let xattrFilter = CompatFeatures(rawValue: 0x04)
    /// `shared_ea_in_metabox`: the shared xattr area lives in the metabox inode.
    public static let sharedXattrsInMetabox = CompatFeatures(rawValue: 0x08)
    /// `plain_xattr_pfx`: long xattr prefixes are in the plain image, not the packed inode.
    public static let plainXattrPrefixes = CompatFeatures(rawValue: 0x10)
    /// `ishare_xattrs`: files carry a content fingerprint xattr (page cache share).
    public static let ishareXattrs = CompatFeatures(rawValue: 0x20)

    static let named: [(CompatFeatures, String)] = [
        (.superBlockChecksum, "sb_csum"), (.mtime, "mtime"), (.xattrFilter, "xattr_filter"),
        (.sharedXattrsInMetabox, "shared_ea_in_metabox"), (.plainXattrPrefixes, "plain_xattr_pfx"),
        (.ishareXattrs, "ishare_xattrs"),
    ]

    /// Names of the set bits, unknown bits as hex.
    public var names: [String] { featureNames(self.rawValue, Self.named.map { ($0.0.rawValue, $0.1) }) }
}

/// `feature_incompat` bits: a reader must refuse an image with a bit it does not know.
public struct IncompatFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `0padding`: compressed data is aligned to the end of its pcluster.
    public static let zeroPadding = IncompatFeatures(rawValue: 0x01)
    /// `compr_cfgs` / `big_pcluster`: compression configuration records follow the superblock.
    public static let compressionConfigs = IncompatFeatures(rawValue: 0x02)
    /// `chunked_file`: the chunk-based data layout.
    public static let chunkedFile = IncompatFeatures(rawValue: 0x04)
    /// `device_table` / `compr_head2`: extra devices, or a second compression head.
    public static let deviceTable = IncompatFeatures(rawValue: 0x08)
    /// `ztailpacking`: compressed tails inline in the metadata block.
    public static let ztailpacking = IncompatFeatures(rawValue: 0x10)
    /// `fragments` / `dedupe`: data in the packed inode, or shared pclusters.
    public static let fragments = IncompatFeatures(rawValue: 0x20)
    /// `xattr_prefixes`: long xattr name prefixes.
    public static let xattrPrefixes = IncompatFeatures(rawValue: 0x40)
    /// `48bit`: 48-bit block addresses and 64-bit root nid.
    public static let blockAddress48 = IncompatFeatures(rawValue: 0x80)
    /// `metabox`: inodes may live in the metabox inode.
    public static let metabox = IncompatFeatures(rawValue: 0x100)

    /// Every incompatible bit this reader understands.
    public static let supported: IncompatFeatures = [
        .zeroPadding, .compressionConfigs, .chunkedFile, .deviceTable, .ztailpacking, .fragments,
        .xattrPrefixes, .blockAddress48, .metabox,
    ]

    static let named: [(IncompatFeatures, String)] = [
        (.zeroPadding, "0padding"), (.compressionConfigs, "compr_cfgs|big_pcluster"),
        (.chunkedFile, "chunked_file"), (.deviceTable, "device_table|compr_head2"),
        (.ztailpacking, "ztailpacking"), (.fragments, "fragments|dedupe"), (.xattrPrefixes, "xattr_prefixes"),
        (.blockAddress48, "48bit"), (.metabox, "metabox"),
    ]

    /// Names of the set bits, unknown bits as hex.
    public var names: [String] { featureNames(self.rawValue, Self.named.map { ($0.0.rawValue, $0.1) }) }
}

private func featureNames(_ raw: UInt32, _ table: [(UInt32, String)]) -> [String] {
    var names: [String] = []
    var known: UInt32 = 0
    for (bit, name) in table where raw & bit != 0 {
        names.append(name)
        known |= bit
    }
    let unknown = raw & ~known
    if unknown != 0 { names.append("unknown(0x" + String(unknown, radix: 16) + ")") }
    return names
}
