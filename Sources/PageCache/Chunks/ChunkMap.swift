import Synchronization

/// A shared file's chunk map: its decoded bytes cut into content-defined chunks, one window (1 MiB) at a
/// time, each window cut when first read (single flight: other readers of the window wait). A window's
/// first chunk starts at the window: a range read never needs the file cut from its start, at the cost of
/// one forced boundary a MiB (the chunk after it finds the content-defined boundaries again).
///
/// A file of a domain that shares whole files only (``SharingUnit/file`` beside chunk-sharing domains, one
/// budget) has a map of *private* chunks: fixed pieces under the file's own keys, shared with no other
/// file, never hashed or kept across restarts.
final class ChunkMap: Sendable {
    let windowBytes: Int
    /// The size of the fixed pieces of a map of private chunks; nil: content-defined chunks, shared.
    let privatePieceBytes: Int?
    /// Where the map is kept across restarts (``ChunkMapArchive``); nil: not kept.
    let archivePath: String?
    private let size: UInt64
    private let maximumChunk: Int
    private let state: Mutex<State>

    private struct State {
        var windows: [ChunkWindow?]
        var building = FillWaiters<Int>()
        /// Whether the archive was read (on the first claim).
        var loaded: Bool
    }

    init(
        size: UInt64, windowBytes: Int, maximumChunk: Int, archivePath: String? = nil, privatePieceBytes: Int? = nil
    ) {
        self.windowBytes = windowBytes
        self.privatePieceBytes = privatePieceBytes
        self.archivePath = privatePieceBytes == nil ? archivePath : nil
        self.size = size
        self.maximumChunk = maximumChunk
        let count = Int((size + UInt64(windowBytes) - 1) / UInt64(windowBytes))
        self.state = Mutex(State(windows: .init(repeating: nil, count: count), loaded: self.archivePath == nil))
    }

    /// What asking for a window found.
    enum Claim {
        case ready(ChunkWindow)
        /// Being cut by another reader: ``wait(for:)``, then ask again.
        case busy
        /// The caller cuts it, then ``publish(_:)`` or ``abandon(_:)``.
        case cut
    }

    func claim(_ window: Int) -> Claim {
        self.state.withLock { state -> Claim in
            if !state.loaded { self.load(&state) }
            if let ready = state.windows[window] { return .ready(ready) }
            if state.building.isFilling(window) { return .busy }
            state.building.begin(window)
            return .cut
        }
    }

    /// Window `window` if it was cut.
    func window(_ window: Int) -> ChunkWindow? { self.state.withLock { $0.windows[window] } }

    /// The windows cut so far.
    var cutWindows: [ChunkWindow] { self.state.withLock { $0.windows.compactMap { $0 } } }

    func wait(for window: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !self.state.withLock({ $0.building.enqueue(continuation, behind: window) }) { continuation.resume() }
        }
    }

    /// Publishes a window just cut, and appends it to the archive.
    func publish(_ window: ChunkWindow) {
        let waiters = self.state.withLock { state in
            state.windows[window.number] = window
            return state.building.end(window.number)
        }
        for waiter in waiters { waiter.resume() }
        if let path = self.archivePath {
            ChunkMapArchive.append(path, window: window.number, references: window.references)
        }
    }

    /// Drops `window` (read from the archive, and found not to agree with the bytes): the next read cuts it.
    func forget(_ window: ChunkWindow) {
        self.state.withLock { state in
            if state.windows[window.number] === window { state.windows[window.number] = nil }
        }
    }

    /// Reads the archive's windows (first claim only; a one-time read of ~0.6 % of the file's size).
    private func load(_ state: inout State) {
        state.loaded = true
        guard let path = self.archivePath else { return }
        let windows = ChunkMapArchive.load(
            path, size: self.size, windowBytes: self.windowBytes, maximumChunk: self.maximumChunk)
        for (number, references) in windows where number < state.windows.count {
            state.windows[number] = ChunkWindow(
                number: number, start: UInt64(number) * UInt64(self.windowBytes), references: references,
                stamps: .init(repeating: 0, count: references.count), fromArchive: true)
        }
    }

    func abandon(_ window: Int) {
        let waiters = self.state.withLock { $0.building.end(window) }
        for waiter in waiters { waiter.resume() }
    }

    /// Keeps chunk `reference` of `window` apart from the shared chunk of its identity (its bytes differ);
    /// returns the window as it is now.
    func keepApart(_ reference: Int, of window: Int) -> ChunkWindow {
        self.state.withLock { state in
            let current = state.windows[window]!
            guard !current.apart.contains(reference) else { return current }
            let stamps = (0..<current.references.count).map { $0 == reference ? 0 : current.stamps[$0] }
            let updated = ChunkWindow(
                number: window, start: current.start, references: current.references, stamps: stamps,
                apart: current.apart.union([reference]), fromArchive: current.fromArchive,
                isPrivate: current.isPrivate)
            state.windows[window] = updated
            return updated
        }
    }

    /// Bytes of the map: the references of the windows cut, with their stamps.
    var metadataBytes: Int {
        self.state.withLock { state in
            state.windows.capacity * MemoryLayout<ChunkWindow?>.stride
                + state.windows.reduce(0) { $0 + ($1.map { $0.references.capacity } ?? 0) }
                * (MemoryLayout<ChunkReference>.stride + MemoryLayout<UInt64>.stride)
        }
    }
}

/// One cut window of a chunk map: its chunks in order, from the window's start to its end, and for each the
/// stamp of the resident fill its bytes were found equal to (0: none yet; see ``ChunkShard``).
final class ChunkWindow: Sendable {
    let number: Int
    /// File offset of the window's first byte.
    let start: UInt64
    let references: [ChunkReference]
    /// References whose bytes differ from the resident chunk of their identity: kept under the file's own key.
    let apart: Set<Int>
    /// Read back from the archive rather than cut in this process: trusted only as far as the bytes agree.
    let fromArchive: Bool
    /// Every chunk is the file's own (a domain sharing whole files only): keyed by file and offset, with no
    /// identity to check.
    let isPrivate: Bool
    /// The stamps, read and written by readers without a lock.
    let stamps: ChunkStamps

    init(
        number: Int, start: UInt64, references: [ChunkReference], stamps: [UInt64], apart: Set<Int> = [],
        fromArchive: Bool = false, isPrivate: Bool = false
    ) {
        self.number = number
        self.start = start
        self.references = references
        self.apart = apart
        self.fromArchive = fromArchive
        self.isPrivate = isPrivate
        self.stamps = ChunkStamps(stamps)
    }

    /// The index of the chunk holding window offset `offset` (which must be inside the window).
    func reference(covering offset: UInt32) -> Int {
        var low = 0
        var high = self.references.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if self.references[middle].start <= offset { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// The store key of reference `index` for `file` in domain `domain`.
    func key(_ index: Int, domain: UInt32, file: UInt64) -> ChunkKey {
        let key = ChunkKey(self.references[index], domain: domain)
        guard self.isPrivate || (!self.apart.isEmpty && self.apart.contains(index)) else { return key }
        return key.keptApart(file: file, offset: self.start + UInt64(self.references[index].start))
    }
}

/// One stamp per chunk of a window, each an atomic word: readers record the fill they checked a chunk
/// against without taking a lock (a lost store only costs one more comparison).
final class ChunkStamps: @unchecked Sendable {
    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    let count: Int

    init(_ stamps: [UInt64]) {
        self.count = stamps.count
        self.words = .allocate(capacity: max(1, stamps.count))
        for (index, stamp) in stamps.enumerated() { (self.words + index).initialize(to: Atomic(stamp)) }
    }

    deinit {
        self.words.deinitialize(count: self.count)
        self.words.deallocate()
    }

    subscript(index: Int) -> UInt64 {
        get { self.words[index].load(ordering: .relaxed) }
        set { self.words[index].store(newValue, ordering: .relaxed) }
    }
}
