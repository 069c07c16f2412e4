/// An extra device (blob) from the device table, and the source the caller gave for it, if any.
struct ExtraDevice: Sendable {
    /// 1-based device id, as chunk indexes refer to it.
    let id: Int
    let slot: DeviceSlotRecord
    let source: (any ImageSource)?

    /// The slot's tag as text (mkfs stores a path hint or digest), for messages.
    var tagDescription: String {
        let bytes = self.slot.tag.prefix { $0 != 0 }
        return bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            ? String(decoding: bytes, as: UTF8.self) : bytes.map { String($0, radix: 16) }.joined()
    }
}

extension Image {
    /// Reads the device table (`devt_slotoff` × 128 bytes from the start of the image) and pairs each slot
    /// with the caller's source in order.
    static func loadDeviceTable(
        source: any ImageSource, superBlock: SuperBlock, given: [any ImageSource]
    ) throws -> [ExtraDevice] {
        let count = superBlock.extraDeviceCount
        guard given.count <= count else {
            throw EROFSError(
                .invalidArgument, "\(given.count) extra device(s) given but the image has \(count)")
        }
        guard count > 0 else { return [] }
        let start = superBlock.deviceTableSlotOffset * UInt64(DeviceSlotRecord.size)
        let bytes: [UInt8]
        do {
            bytes = try source.readBytes(at: start, count: count * DeviceSlotRecord.size)
        } catch {
            throw EROFSError.corrupted("device table of \(count) slots lies past the end of the image", at: start)
        }
        return (0..<count).map { index in
            let base = index * DeviceSlotRecord.size
            let slot = DeviceSlotRecord(Array(bytes[base..<base + DeviceSlotRecord.size]))
            return ExtraDevice(id: index + 1, slot: slot, source: index < given.count ? given[index] : nil)
        }
    }

    /// Where `byteCount` bytes at block `block` of device `deviceID` are (`erofs_map_dev`): an explicit
    /// device id selects that extra device; device 0 is the primary, unless the block falls into the range
    /// an extra device is mapped at (`mapped_blkaddr`).
    func deviceStorage(deviceID: Int, block: UInt64, byteCount: UInt64, nid: UInt64) throws -> Extent.Storage {
        var deviceID = deviceID
        var block = block
        if deviceID == 0 {
            for device in self.devices where device.slot.mappedBlockAddress != 0 {
                let mapped = UInt64(device.slot.mappedBlockAddress)
                if block >= mapped && block - mapped < UInt64(device.slot.blocks) {
                    deviceID = device.id
                    block -= mapped
                    break
                }
            }
        }
        let source: any ImageSource
        if deviceID == 0 {
            source = self.source
        } else {
            guard deviceID <= self.devices.count else {
                throw EROFSError.corrupted(
                    "chunk points at device \(deviceID) but the image has \(self.devices.count) extra", nid: nid)
            }
            let device = self.devices[deviceID - 1]
            guard let deviceSource = device.source else {
                let tag = device.tagDescription
                throw EROFSError(
                    .missingDevice,
                    "data is on extra device \(deviceID) of \(self.devices.count)\(tag.isEmpty ? "" : " (\(tag))"), "
                        + "which was not given", nid: nid)
            }
            source = deviceSource
        }
        let offset = block << UInt64(self.superBlock.blockSizeBits)
        let (end, overflow) = offset.addingReportingOverflow(byteCount)
        guard block < 1 << 48, !overflow, end <= source.size else {
            throw EROFSError.corrupted(
                "data block \(block) (+\(byteCount) bytes) lies past the end of device \(deviceID)", nid: nid)
        }
        return .device(source, offset: offset, deviceID: deviceID)
    }
}
