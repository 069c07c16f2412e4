extension Image {
    /// Reads from a compressed inode: maps each extent, decodes its pcluster (or the needed prefix) into the
    /// context's scratch, and copies the requested bytes out.
    func readCompressed(
        _ inode: Inode, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, total: Int,
        context: ReadContext
    ) throws {
        let image = self.identity
        let info: CompressionInfo
        if let cached = context.info, cached.image === image, cached.nid == inode.nid {
            info = cached.info
        } else {
            info = try self.compressionInfo(of: inode)
            context.info = (image, inode.nid, info)
        }
        // Fragments are read from the packed inode, so it cannot have fragments itself (that would recurse
        // forever); the superblock check keeps the packed inode out of the metabox for the same reason.
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
            if case .hole = extent.storage {
                destination.initializeMemory(as: UInt8.self, repeating: 0)
            } else if case .fragment(let fragmentOffset) = extent.storage {
                guard let packed = self.packedInode else {
                    throw EROFSError.corrupted("fragment without a packed inode", nid: inode.nid)
                }
                let (start, overflow) = fragmentOffset.addingReportingOverflow(UInt64(within))
                guard !overflow, try self.read(packed, at: start, into: destination) == count else {
                    throw EROFSError.corrupted("fragment runs past the packed inode", nid: inode.nid)
                }
            } else if within == 0 && count == Int(extent.length) {
                // The caller wants the whole extent: decode straight into its buffer.
                try self.decode(extent, of: inode, into: destination, context: context)
            } else {
                let decoded = try self.decodeExtent(extent, of: inode, upTo: within + count, context: context)
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: decoded[within..<within + count]))
            }
            done += count
        }
    }

    /// Decoded bytes `0..<count` (at least) of `extent`, reusing the context's last decode when it covers them.
    /// The whole extent is decoded (at most 12 MiB, the format's limit) so that sequential reads reuse it.
    private func decodeExtent(
        _ extent: CompressedExtent, of inode: Inode, upTo count: Int, context: ReadContext
    ) throws -> UnsafeMutableRawBufferPointer {
        let image = self.identity
        if let decoded = context.decoded, decoded.image === image, decoded.nid == inode.nid,
            decoded.logicalOffset == extent.logicalOffset, decoded.count >= count
        {
            return UnsafeMutableRawBufferPointer(rebasing: context.output[0..<decoded.count])
        }
        context.decoded = nil
        let wanted = max(count, Int(extent.length))
        let output = UnsafeMutableRawBufferPointer(rebasing: context.outputBuffer(wanted)[0..<wanted])
        try self.decode(extent, of: inode, into: output, context: context)
        context.decoded = (image, inode.nid, extent.logicalOffset, wanted)
        return output
    }

    /// Decodes the first `output.count` bytes of `extent` into `output`.
    private func decode(
        _ extent: CompressedExtent, of inode: Inode, into output: UnsafeMutableRawBufferPointer, context: ReadContext
    ) throws {
        let input: UnsafeMutableRawBufferPointer
        let blockOffset: Int
        switch extent.storage {
        case .blocks(let offset, let byteCount):
            input = context.inputBuffer(byteCount)
            try self.source.read(into: input, at: offset)
            blockOffset = Int(offset % UInt64(self.superBlock.blockSize))
        case .inline(let location, let byteCount):
            input = context.inputBuffer(byteCount)
            input.copyBytes(from: try self.readMetadata(location, count: byteCount))
            blockOffset = Int(location.offset % UInt64(self.superBlock.blockSize))
        case .fragment, .hole:
            throw EROFSError.corrupted("fragments and holes are not decoded", nid: inode.nid)
        }
        let request = DecodeRequest(
            input: UnsafeRawBufferPointer(input), inputBlockOffset: blockOffset, output: output,
            partial: output.count < Int(extent.length) || extent.partialReference,
            logicalOffset: extent.logicalOffset, blockSize: self.superBlock.blockSize,
            zeroPadding: self.superBlock.incompatFeatures.contains(.zeroPadding), configuration: self.compression,
            nid: inode.nid, codecs: context.codecs)
        try PclusterDecoder.decode(extent.format, request)
    }
}
