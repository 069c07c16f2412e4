import NIOCore
import NIOHTTP1
import NIOPosix
import PageCache
import Testing

@testable import PageShareServer

/// The body streamer as a state machine, in memory: a fake file (resident below a mark, read through a miss
/// above it, failing from an offset), a fake writer (writable or full, its writes completed when the test
/// says), a fake owner. No socket, no cache.
@Suite("Body streamer")
struct BodyStreamerTests {
    struct SourceFailure: Error {}

    /// `bytes`, resident below `residentBelow`; a read through a miss that reaches `failAt` fails.
    struct FakeSource: BodySource {
        let bytes: [UInt8]
        var residentBelow: UInt64
        var failAt: UInt64?

        func borrowResident(at offset: UInt64, maxBytes: Int) -> PageLoan? { nil }

        func readResident(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int {
            guard offset < self.residentBelow else { return 0 }
            let resident = Int(min(self.residentBelow - offset, UInt64(Int.max)))
            let count = min(buffer.count, resident, self.bytes.count - Int(offset))
            self.bytes.withUnsafeBytes {
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<(Int(offset) + count)]))
            }
            return count
        }

        func readLent(at offset: UInt64, maxBytes: Int) async throws -> PageLoan? { nil }

        func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
            if let failAt = self.failAt, offset + UInt64(buffer.count) > failAt { throw SourceFailure() }
            let count = min(buffer.count, self.bytes.count - Int(offset))
            self.bytes.withUnsafeBytes {
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<(Int(offset) + count)]))
            }
            return count
        }
    }

    final class FakeWriter: ResponseWriter {
        var isWritable = true
        let allowance: SendAllowance?
        var heads: [ResponseHead] = []
        var body: [UInt8] = []
        /// Writes not completed yet: their notices and byte counts.
        var pending: [(notice: WriteNotice?, bytes: Int)] = []
        var mostPending = 0
        var flushes = 0
        var aborted = false
        /// "head" and "body", in the order written.
        var events: [String] = []

        init(allowance: SendAllowance?) { self.allowance = allowance }

        func writeHead(_ head: ResponseHead) {
            self.heads.append(head)
            self.events.append("head")
        }

        func writeBody(_ bytes: ByteBuffer, notice: WriteNotice?) {
            self.body += bytes.readableBytesView
            self.events.append("body")
            self.pending.append((notice, bytes.readableBytes))
            self.mostPending = max(self.mostPending, self.pending.reduce(0) { $0 + $1.bytes })
        }

        func writeEnd(keepAlive: Bool) {}
        func flush() { self.flushes += 1 }
        func abort() { self.aborted = true }

        /// Completes the writes made so far, succeeding or failing them.
        func completeWrites(failing: Bool = false) {
            let pending = self.pending
            self.pending = []
            for (notice, _) in pending {
                notice?.tell(failing ? .failure(ChannelError.ioOnClosedChannel) : .success(()))
            }
        }
    }

    final class FakeOwner: BodyStreamerOwner {
        enum Outcome: Equatable {
            case finished(sentBytes: Int)
            case failed(status: UInt, headSent: Bool, sentBytes: Int)
        }
        var outcome: Outcome?

        func bodyFinished(sentBytes: Int) { self.outcome = .finished(sentBytes: sentBytes) }
        func bodyFailed(_ problem: Problem, headSent: Bool, sentBytes: Int) {
            self.outcome = .failed(status: UInt(problem.status), headSent: headSent, sentBytes: sentBytes)
        }
    }

    /// One streamer and its fakes, touched on the event loop only (`onLoop`).
    final class Harness: @unchecked Sendable {
        static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = Harness.group.next()
        let source: FakeSource
        var writer: FakeWriter!
        let owner = FakeOwner()
        var streamer: BodyStreamer<FakeSource>!

        init(
            size: Int = 100_000, residentBelow: UInt64 = .max, failAt: UInt64? = nil, chunkBytes: Int = 1000,
            allowance budget: SendBudget? = nil, body: ((FakeSource) -> ResponseBody)? = nil
        ) async throws {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
            self.source = FakeSource(bytes: bytes, residentBelow: residentBelow, failAt: failAt)
            let source = self.source
            let responseBody = body?(source) ?? .range(0...UInt64(size - 1))
            try await self.onLoop {
                let allowance = budget.map { SendAllowance(budget: $0, eventLoop: self.loop) }
                self.writer = FakeWriter(allowance: allowance)
                self.streamer = BodyStreamer(
                    source: source, head: ResponseHead(status: .ok, allocator: ByteBufferAllocator()),
                    body: responseBody, writer: self.writer, owner: self.owner,
                    settings: .init(chunkBytes: chunkBytes, pageWrites: .copy, fillExecutor: globalConcurrentExecutor),
                    eventLoop: self.loop)
            }
        }

        func onLoop<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
            try await self.loop.submit(body).get()
        }

        /// Whether the body written is `expected` (a Bool, so that a failure does not print both).
        func wrote(_ expected: [UInt8]) -> Bool { self.writer.body == expected }

        /// Waits (up to 5 s) until the owner has been told the outcome.
        func outcome() async throws -> FakeOwner.Outcome? {
            for _ in 0..<1000 {
                if let outcome = try await self.onLoop({ self.owner.outcome }) { return outcome }
                try await Task.sleep(for: .milliseconds(5))
            }
            return nil
        }
    }

    @Test("a resident body goes out whole: the head first, every byte in order, then the owner is told")
    func residentBody() async throws {
        let harness = try await Harness(size: 10_000)
        try await harness.onLoop { harness.streamer.start() }
        #expect(try await harness.outcome() == .finished(sentBytes: 10_000))
        try await harness.onLoop {
            #expect(harness.streamer.state == .finished)
            #expect(harness.writer.events.first == "head" && harness.writer.heads.count == 1)
            #expect(harness.wrote(harness.source.bytes), "\(harness.writer.body.count) bytes")
        }
    }

    @Test("literal parts wait for the head; a multipart body comes out in order")
    func multipart() async throws {
        let harness = try await Harness(size: 5000) { _ in
            .multipart(
                [10...2009, 4000...4999], fileLength: 5000, contentType: "application/octet-stream",
                boundary: "b", allocator: ByteBufferAllocator())
        }
        try await harness.onLoop { harness.streamer.start() }
        guard case .finished(let sent) = try await harness.outcome() else {
            Issue.record("not finished")
            return
        }
        try await harness.onLoop {
            var expected: [UInt8] = []
            let body = ResponseBody.multipart(
                [10...2009, 4000...4999], fileLength: 5000, contentType: "application/octet-stream", boundary: "b",
                allocator: ByteBufferAllocator())
            for segment in body.segments {
                switch segment {
                case .bytes(let bytes): expected += bytes.readableBytesView
                case .file(let offset, let count):
                    expected += harness.source.bytes[Int(offset)..<Int(offset + count)]
                }
            }
            #expect(harness.writer.events.first == "head")
            #expect(harness.wrote(expected) && sent == expected.count)
        }
    }

    @Test("a full writer stops the body after the first chunk (read before the head goes out); writable, it goes on")
    func fullWriter() async throws {
        let harness = try await Harness(size: 10_000)
        try await harness.onLoop {
            harness.writer.isWritable = false
            harness.streamer.start()
            #expect(harness.streamer.state == .waitingForWriter)
            #expect(harness.writer.body.count == 1000 && harness.writer.heads.count == 1)
            #expect(harness.writer.flushes >= 1, "what was written goes out")
            harness.streamer.writabilityChanged()
            #expect(harness.writer.body.count == 1000, "still full")
            harness.writer.isWritable = true
            harness.streamer.writabilityChanged()
        }
        #expect(try await harness.outcome() == .finished(sentBytes: 10_000))
        try await harness.onLoop { #expect(harness.wrote(harness.source.bytes), "\(harness.writer.body.count) bytes") }
    }

    @Test("a miss is filled off the event loop and the body goes on, exact")
    func miss() async throws {
        let harness = try await Harness(size: 10_000, residentBelow: 3000)
        try await harness.onLoop {
            harness.streamer.start()
            #expect(harness.streamer.state == .filling && harness.writer.body.count == 3000)
        }
        #expect(try await harness.outcome() == .finished(sentBytes: 10_000))
        try await harness.onLoop { #expect(harness.wrote(harness.source.bytes), "\(harness.writer.body.count) bytes") }
    }

    @Test("a read failing before the head: the owner answers with the error, nothing was written")
    func failureBeforeHead() async throws {
        let harness = try await Harness(size: 10_000, residentBelow: 0, failAt: 0)
        try await harness.onLoop { harness.streamer.start() }
        #expect(try await harness.outcome() == .failed(status: 500, headSent: false, sentBytes: 0))
        try await harness.onLoop {
            #expect(harness.writer.heads.isEmpty && harness.writer.body.isEmpty)
            #expect(harness.streamer.state == .stopped)
        }
    }

    @Test("a read failing after the head: the owner is told the head went out, the bytes before were exact")
    func failureAfterHead() async throws {
        let harness = try await Harness(size: 10_000, residentBelow: 2000, failAt: 5000)
        try await harness.onLoop { harness.streamer.start() }
        #expect(try await harness.outcome() == .failed(status: 500, headSent: true, sentBytes: 5000))
        try await harness.onLoop {
            #expect(harness.writer.heads.count == 1 && harness.wrote(Array(harness.source.bytes[0..<5000])))
        }
    }

    @Test("with an allowance the body stops at its room and goes on as its writes complete; all is given back")
    func allowance() async throws {
        let budget = SendBudget(poolBytes: 0, connections: 1, chunkBytes: 1000, sendTimeout: .seconds(60))
        let harness = try await Harness(size: 100_000, allowance: budget)
        try await harness.onLoop {
            harness.streamer.start()
            let state = harness.streamer.state
            #expect(state == .waitingForOwnWrites || state == .waitingForRoom, "\(state)")
            #expect(harness.writer.body.count < 100_000 && harness.writer.heads.count == 1)
        }
        for _ in 0..<1000 {
            let done = try await harness.onLoop {
                harness.writer.completeWrites()
                return harness.owner.outcome != nil && harness.writer.pending.isEmpty
            }
            if done { break }
        }
        #expect(try await harness.outcome() == .finished(sentBytes: 100_000))
        try await harness.onLoop {
            #expect(harness.wrote(harness.source.bytes), "\(harness.writer.body.count) bytes")
            #expect(
                harness.writer.mostPending <= budget.floorBytes, "\(harness.writer.mostPending) bytes unsent at once")
            #expect(harness.writer.allowance?.held == 0 && harness.streamer.bytesHeld == 0)
        }
    }

    @Test("stop(): nothing more is written; room not used goes back at once, the rest as pending writes fail")
    func stop() async throws {
        let budget = SendBudget(poolBytes: 0, connections: 1, chunkBytes: 1000, sendTimeout: .seconds(60))
        let harness = try await Harness(size: 100_000, residentBelow: 50_000, allowance: budget)
        try await harness.onLoop {
            harness.streamer.start()
            let written = harness.writer.body.count
            harness.streamer.stop()
            #expect(harness.streamer.state == .stopped)
            harness.streamer.writabilityChanged()
            harness.streamer.allowanceAvailable()
            harness.writer.completeWrites(failing: true)
            #expect(harness.writer.body.count == written, "nothing after the stop")
            #expect(harness.writer.allowance?.held == 0 && harness.streamer.bytesHeld == 0)
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await harness.onLoop { harness.owner.outcome } == nil, "a stopped body's owner is not called")
    }
}
