/// One extent of a file as `pageshare stat` reports it.
public struct ExtentSummary: Sendable, Hashable {
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        /// Raw data blocks on device `device` (0 = the image).
        case blocks(device: Int)
        case hole
        /// Tail data inline after the inode.
        case inline
        /// An encoded pcluster (`lz4`, `plain (interlaced)`...), `inline` for ztailpacking.
        case encoded(String, inline: Bool)
        /// Data in the packed inode.
        case fragment

        public var description: String {
            switch self {
            case .blocks(let device): device == 0 ? "blocks" : "blocks on device \(device)"
            case .hole: "hole"
            case .inline: "inline"
            case .encoded(let format, let inline): inline ? "\(format), inline" : format
            case .fragment: "fragment"
            }
        }
    }

    public let logicalOffset: UInt64
    public let length: UInt64
    public let kind: Kind
}

extension Image {
    /// The extents of `inode`'s data in file order (at most `limit`, to bound huge files).
    public func extents(of inode: Inode, limit: Int = 100_000) throws -> [ExtentSummary] {
        var result: [ExtentSummary] = []
        var position: UInt64 = 0
        let info = inode.layout.isCompressed ? try self.compressionInfo(of: inode) : nil
        while position < inode.size && result.count < limit {
            let summary: ExtentSummary
            if let info {
                let extent = try self.compressedExtent(of: inode, info: info, containing: position)
                let kind: ExtentSummary.Kind
                switch extent.storage {
                case .blocks: kind = .encoded(extent.format.description, inline: false)
                case .inline: kind = .encoded(extent.format.description, inline: true)
                case .fragment: kind = .fragment
                case .hole: kind = .hole
                }
                summary = ExtentSummary(logicalOffset: extent.logicalOffset, length: extent.length, kind: kind)
            } else {
                let extent = try self.extent(of: inode, containing: position)
                let kind: ExtentSummary.Kind
                switch extent.storage {
                case .hole: kind = .hole
                case .metadata: kind = .inline
                case .device(_, _, let deviceID):
                    kind = .blocks(device: deviceID)
                }
                summary = ExtentSummary(logicalOffset: extent.logicalOffset, length: extent.length, kind: kind)
            }
            guard summary.logicalOffset + summary.length > position else {
                throw EROFSError.corrupted("extent map does not advance at offset \(position)", nid: inode.nid)
            }
            result.append(summary)
            position = summary.logicalOffset + summary.length
        }
        return result
    }
}
