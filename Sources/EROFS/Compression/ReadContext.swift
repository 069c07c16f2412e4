/// Reusable state for reading compressed files: scratch buffers and the last decoded extent, so that
/// sequential reads decode each pcluster once. Not thread-safe: use one per thread or task.
public final class ReadContext {
    var input: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0)
    var output: UnsafeMutableRawBufferPointer = .init(start: nil, count: 0)
    /// What `output` holds: (nid, extent offset, decoded byte count).
    var decoded: (nid: UInt64, logicalOffset: UInt64, count: Int)?
    /// The compression info of the last compressed inode read.
    var info: (nid: UInt64, info: CompressionInfo)?

    public init() {}

    deinit {
        self.input.deallocate()
        self.output.deallocate()
    }

    func inputBuffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if self.input.count < count {
            self.input.deallocate()
            self.input = .allocate(byteCount: count, alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(rebasing: self.input[0..<count])
    }

    func outputBuffer(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if self.output.count < count {
            self.output.deallocate()
            self.output = .allocate(byteCount: count, alignment: 16)
            self.decoded = nil
        }
        return UnsafeMutableRawBufferPointer(rebasing: self.output[0..<count])
    }
}

extension Image {
    /// Reads from a compressed inode: maps each extent, decodes its pcluster (or the needed prefix) into the
    /// context's scratch, and copies the requested bytes out.
    func readCompressed(
        _ inode: Inode, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, total: Int,
        context: ReadContext
    ) throws {
        let info: CompressionInfo
        if let cached = context.info, cached.nid == inode.nid {
            info = cached.info
        } else {
            info = try self.compressionInfo(of: inode)
            context.info = (inode.nid, info)
        }
        if inode.nid == self.packedInode?.nid, !info.advise.isDisjoint(with: [.fragmentPcluster]) {
            throw EROFSError.corrupted("the packed inode refers to fragments of itself", nid: inode.nid)
        }
        var done = 0
        while done < total {
            let position = offset + UInt64(done)
            let extent = try self.compressedExtent(of: inode, info: info, containing: position)
            let within = Int(position - extent.logicalOffset)
            let count = min(total - done, Int(extent.length) - within)
            let destination = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + count])
            if case .fragment(let fragmentOffset) = extent.storage {
                guard let packed = self.packedInode else {
                    throw EROFSError.corrupted("fragment without a packed inode", nid: inode.nid)
                }
                let (start, overflow) = fragmentOffset.addingReportingOverflow(UInt64(within))
                guard !overflow, try self.read(packed, at: start, into: destination) == count else {
                    throw EROFSError.corrupted("fragment runs past the packed inode", nid: inode.nid)
                }
            } else {
                let decoded = try self.decodeExtent(extent, of: inode, upTo: within + count, context: context)
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: decoded[within..<within + count]))
            }
            done += count
        }
    }

    /// Decoded bytes `0..<count` (at least) of `extent`, reusing the context's last decode when it covers them.
    private func decodeExtent(
        _ extent: CompressedExtent, of inode: Inode, upTo count: Int, context: ReadContext
    ) throws -> UnsafeMutableRawBufferPointer {
        if let decoded = context.decoded, decoded.nid == inode.nid, decoded.logicalOffset == extent.logicalOffset,
            decoded.count >= count
        {
            return UnsafeMutableRawBufferPointer(rebasing: context.output[0..<decoded.count])
        }
        context.decoded = nil
        let input: UnsafeMutableRawBufferPointer
        let blockOffset: Int
        switch extent.storage {
        case .blocks(let offset, let byteCount):
            input = context.inputBuffer(byteCount)
            try self.source.read(into: input, at: offset)
            blockOffset = 0
        case .inline(let location, let byteCount):
            input = context.inputBuffer(byteCount)
            input.copyBytes(from: try self.readMetadata(location, count: byteCount))
            blockOffset = Int(location.offset % UInt64(self.superBlock.blockSize))
        case .fragment:
            throw EROFSError.corrupted("fragment extents are not decoded", nid: inode.nid)
        }
        // Decode the whole extent unless only a prefix is asked for: sequential readers then reuse it.
        let output = context.outputBuffer(Int(extent.length))
        let wanted = sequentialDecodeLength(extent: extent, asked: count)
        let request = DecodeRequest(
            input: UnsafeRawBufferPointer(input), inputBlockOffset: blockOffset,
            output: UnsafeMutableRawBufferPointer(rebasing: output[0..<wanted]),
            partial: wanted < Int(extent.length) || extent.partialReference, logicalOffset: extent.logicalOffset,
            blockSize: self.superBlock.blockSize,
            zeroPadding: self.superBlock.incompatFeatures.contains(.zeroPadding),
            configuration: self.compression, nid: inode.nid)
        try PclusterDecoder.decode(extent.format, request)
        context.decoded = (inode.nid, extent.logicalOffset, wanted)
        return UnsafeMutableRawBufferPointer(rebasing: output[0..<wanted])
    }
}

/// How much of an extent to decode when `asked` bytes are needed: all of it, so the next sequential read
/// finds it decoded (the extent is at most 12 MiB, the format's limit).
private func sequentialDecodeLength(extent: CompressedExtent, asked: Int) -> Int {
    max(asked, Int(extent.length))
}
