import EROFS
import Synchronization

/// Paths of one attached image already resolved to inodes, in lock stripes. Images are immutable, so an
/// answer never goes stale while the image is attached; the table goes with the image on detach. Each
/// stripe holds a bounded number of entries and starts over when full (a cheap bound, not an LRU).
final class ResolvedPaths: Sendable {
    private static let stripeCount = 16
    private static let entriesPerStripe = 4096
    private let stripes: [Stripe] = (0..<ResolvedPaths.stripeCount).map { _ in Stripe() }

    private final class Stripe: Sendable {
        /// Paths compared as bytes: an NFC and an NFD spelling are two different paths.
        let table = Mutex<[ByteKey: Inode]>([:])
    }

    /// The inode of `path`, from the table or from `resolve` (failures are not remembered).
    func inode(for path: String, resolve: () throws -> Inode) throws -> Inode {
        let key = ByteKey(path)
        var hasher = Hasher()
        hasher.combine(key)
        let stripe = self.stripes[Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.stripeCount))]
        if let inode = stripe.table.withLock({ $0[key] }) { return inode }
        let inode = try resolve()
        stripe.table.withLock { table in
            if table.count >= Self.entriesPerStripe { table.removeAll(keepingCapacity: true) }
            table[key] = inode
        }
        return inode
    }
}
