import EROFS
import Glibc

/// The differences between two trees as fsck.erofs 1.5 can reproduce them: it extracts hard links as copies,
/// restores no xattrs and no set-id/sticky bits, and owners only as root. The roots (host directories) are
/// left out.
public func fsckComparableProblems(_ lhs: [String: TreeEntry], _ rhs: [String: TreeEntry]) -> [String] {
    var ignoring: Set<String> = ["linkCount", "xattrs"]
    if geteuid() != 0 { ignoring.insert("owner") }
    return compareTrees(
        lhs.filter { !$0.key.isEmpty }.mapValues { $0.maskingSpecialBits() },
        rhs.filter { !$0.key.isEmpty }.mapValues { $0.maskingSpecialBits() }, ignoring: ignoring)
}

extension TestImage {
    /// What PageShare's reader sees that `fsck.erofs --extract` does not (see ``fsckComparableProblems``).
    public func readerVersusFsck(devices: [String] = []) throws -> [String] {
        let extracted = self.directory.path + "/fsck"
        try ErofsUtils.fsckExtract(self.path, to: extracted, devices: devices)
        let ours = try snapshotImage(try self.open(devicePaths: devices))
        return fsckComparableProblems(ours, try snapshotHostTree(extracted, readingXattrs: false))
    }

    /// Every difference between PageShare's reader and the kernel mount (needs ``KernelMount/isAvailable``).
    public func readerVersusKernel(devices: [String] = []) throws -> [String] {
        let ours = try snapshotImage(try self.open(devicePaths: devices))
        let kernel = try KernelMount.withMount(self.path, devices: devices) { try snapshotHostTree($0) }
        return compareTrees(ours, kernel)
    }
}
