import EROFS
import Synchronization

/// Paths of one attached image already resolved to inodes, in lock stripes, with the open file of a regular
/// one once it was opened. Images are immutable, so an answer never goes stale while the image is attached;
/// the table goes with the image on detach. Each stripe holds a bounded number of entries and starts over
/// when full (a cheap bound, not an LRU).
final class ResolvedPaths: Sendable {
    private static let stripeCount = 16
    private static let entriesPerStripe = 4096
    private let stripes: [Stripe] = (0..<ResolvedPaths.stripeCount).map { _ in Stripe() }

    /// A path's inode, and the shared file its reads go through once it was opened (a file is opened once
    /// per inode and kept with the image: remembering it here saves a second lookup per read).
    struct Entry: Sendable {
        let inode: Inode
        var file: SharedFile?
    }

    private final class Stripe: Sendable {
        /// Paths compared as bytes: an NFC and an NFD spelling are two different paths.
        let table = Mutex<[ByteKey: Entry]>([:])
    }

    private func stripe(for key: ByteKey) -> Stripe {
        var hasher = Hasher()
        hasher.combine(key)
        return self.stripes[Int(UInt(bitPattern: hasher.finalize()) % UInt(Self.stripeCount))]
    }

    /// The entry of `path`, from the table or made with `resolve` (failures are not remembered).
    func entry(for path: String, resolve: () throws -> Inode) throws -> Entry {
        let key = ByteKey(path)
        let stripe = self.stripe(for: key)
        if let entry = stripe.table.withLock({ $0[key] }) { return entry }
        let entry = Entry(inode: try resolve(), file: nil)
        stripe.table.withLock { table in
            if table.count >= Self.entriesPerStripe { table.removeAll(keepingCapacity: true) }
            table[key] = entry
        }
        return entry
    }

    /// Remembers `file`, opened for inode `nid`, with `path`'s entry (if it is still in the table).
    func remember(_ file: SharedFile, nid: UInt64, for path: String) {
        let key = ByteKey(path)
        self.stripe(for: key).table.withLock { table in
            if table[key]?.inode.nid == nid { table[key]?.file = file }
        }
    }
}
