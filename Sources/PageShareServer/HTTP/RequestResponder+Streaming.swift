import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// File bodies: sent chunk by chunk while the writer is writable, resident pages lent by the cache (or
/// copied, for small pages: ``PageWrites``) on the event loop, missing ones filled on the cache's threads.
extension RequestResponder {
    /// Sends body chunks while the writer is writable; stops at a chunk with a missing page (and fills it
    /// off the event loop) or when the body is done.
    func pump() {
        guard !self.pumping else {
            self.pumpAgain = true
            return
        }
        self.pumping = true
        defer { self.pumping = false }
        repeat {
            self.pumpAgain = false
            self.pumpOnce()
        } while self.pumpAgain
    }

    func pumpOnce() {
        guard let stream = self.stream, !stream.fillInFlight else { return }
        let chunkBytes = self.plane.limits.chunkBytes
        while stream.segmentIndex < stream.body.segments.count {
            // Stop when the connection or stream went away under a write (detach dropped the stream) or the
            // writer is full.
            guard self.stream === stream, let writer = self.writer, writer.isWritable || !stream.headSent else {
                break
            }
            switch stream.body.segments[stream.segmentIndex] {
            case .bytes(let bytes):
                stream.segmentIndex += 1
                self.context?.sentBytes += bytes.readableBytes
                if stream.headSent {
                    writer.writeBody(bytes, promise: nil)
                } else {
                    stream.held.append(bytes)
                }
            case .file(let offset, let count):
                let position = offset + stream.segmentDone
                var wanted = Int(min(UInt64(chunkBytes), count - stream.segmentDone))
                if let allowance = self.allowance {
                    if stream.granted == 0 {
                        // No room: the head goes out now rather than with the first chunk (the client learns
                        // the status while the body waits), and the body waits for this stream's own writes
                        // to complete (it holds its part already) or for the connection's to make room.
                        if allowance.isStreamPartHeld(self.bodyBytesHeld) {
                            self.heldBackByOwnBytes = true
                            self.sendHead(of: stream)
                            self.writer?.flush()
                            return
                        }
                        stream.granted = allowance.grant(upTo: wanted, streamHolds: self.bodyBytesHeld)
                        guard stream.granted > 0 else {
                            self.sendHead(of: stream)
                            allowance.wait(self)
                            self.writer?.flush()
                            return
                        }
                        self.bodyBytesHeld += stream.granted
                    }
                    wanted = min(wanted, stream.granted)
                }
                let file = stream.file
                let ready: Int
                switch self.plane.pageWrites {
                case .lend:
                    let loan = file.borrowResident(at: position, maxBytes: wanted)
                    if let loan { self.emit(.lent(loan), stream: stream) }
                    ready = loan?.byteCount ?? 0
                case .copy:
                    var buffer = self.allocator.buffer(capacity: wanted)
                    ready = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { memory in
                        file.readResident(
                            at: position, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<wanted]))
                    }
                    if ready > 0 { self.emit(.filled(buffer), stream: stream) }
                }
                if ready < wanted {
                    stream.fillInFlight = true
                    self.fill(file, at: position + UInt64(ready), count: wanted - ready)
                    self.writer?.flush()
                    return
                }
            }
        }
        guard self.stream === stream else { return }
        if stream.segmentIndex == stream.body.segments.count {
            self.dropStream()
            self.finish()
        } else {
            self.writer?.flush()
        }
    }

    /// File bytes ready to send: pages lent by the cache, or bytes copied from resident pages or read by a fill.
    enum Chunk {
        case lent(PageLoan)
        case filled(ByteBuffer)

        var byteCount: Int {
            switch self {
            case .lent(let loan): loan.byteCount
            case .filled(let buffer): buffer.readableBytes
            }
        }
    }

    /// Writes the held head and literal bytes, if not yet sent.
    func sendHead(of stream: BodyStream) {
        guard !stream.headSent, let writer = self.writer else { return }
        stream.headSent = true
        writer.writeHead(stream.responseHead)
        for bytes in stream.held { writer.writeBody(bytes, promise: nil) }
        stream.held = []
    }

    /// Writes file bytes (after the held head and literal bytes) and advances the stream. The state moves
    /// before the writes, which may re-enter the handler. Lent pages go out as views of the cache's memory;
    /// the loan is held until the last of them is written (its promise), so the pages cannot be reused
    /// while NIO still holds them.
    func emit(_ chunk: Chunk, stream: BodyStream) {
        stream.segmentDone += UInt64(chunk.byteCount)
        stream.granted = max(0, stream.granted - chunk.byteCount)
        self.context?.sentBytes += chunk.byteCount
        if case .file(_, let count) = stream.body.segments[stream.segmentIndex], stream.segmentDone == count {
            stream.segmentIndex += 1
            stream.segmentDone = 0
        }
        self.sendHead(of: stream)
        guard let writer = self.writer else { return }
        switch chunk {
        case .filled(let buffer):
            guard self.allowance != nil else { return writer.writeBody(buffer, promise: nil) }
            let count = buffer.readableBytes
            let written = self.eventLoop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenComplete { result in self.bodyBytesWritten(count, result) }
            writer.writeBody(buffer, promise: written)
        case .lent(let loan):
            for page in loan.dropLast() { writer.writeBody(page, promise: nil) }
            let written = self.eventLoop.makePromise(of: Void.self)
            writer.writeBody(loan[loan.endIndex - 1], promise: written)
            written.futureResult.assumeIsolated().whenComplete { result in
                withExtendedLifetime(loan) {}
                self.bodyBytesWritten(loan.byteCount, result)
            }
        }
    }

    /// A body chunk's write completed: its room goes back, and a body held back by its own unsent bytes goes
    /// on. A failed write means the stream or connection is gone (a reset's dropped frames fail before the
    /// stream's close is reported): the body stops rather than produce chunks that are dropped in turn.
    private func bodyBytesWritten(_ count: Int, _ result: Result<Void, any Error>) {
        guard let allowance = self.allowance else { return }
        self.bodyBytesHeld -= count
        allowance.release(count, after: result)
        if case .failure = result {
            self.dropStream()
        } else if self.heldBackByOwnBytes {
            self.heldBackByOwnBytes = false
            self.pump()
        }
    }

    /// Writes a whole response's body, charged to the allowance until its write completes.
    func writeCharged(_ bytes: ByteBuffer) {
        guard let writer = self.writer else { return }
        guard let allowance = self.allowance else { return writer.writeBody(bytes, promise: nil) }
        let count = bytes.readableBytes
        allowance.charge(count)
        let written = self.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenComplete { result in allowance.release(count, after: result) }
        writer.writeBody(bytes, promise: written)
    }

    /// Reads `count` bytes at `offset` through the cache (which runs it on its fill threads), then resumes
    /// the stream. Where pages are lent, the bytes a miss just published are lent too instead of copied out;
    /// the pump asks again for whatever the loan did not cover.
    func fill(_ file: CachedFile, at offset: UInt64, count: Int) {
        let promise = self.eventLoop.makePromise(of: Chunk.self)
        let allocator = self.allocator
        let lend = self.plane.pageWrites == .lend
        Task(executorPreference: self.plane.cache.fillExecutor) {
            do {
                if lend, let loan = try await file.readLent(at: offset, maxBytes: count) {
                    return promise.succeed(.lent(loan))
                }
                var buffer = allocator.buffer(capacity: count)
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
                defer { scratch.deallocate() }
                let read = try await file.read(at: offset, into: scratch)
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[0..<read]))
                promise.succeed(.filled(buffer))
            } catch {
                promise.fail(error)
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard let stream = self.stream else { return }  // the connection or stream went away meanwhile
            stream.fillInFlight = false
            switch result {
            case .success(.lent(let loan)):
                self.emit(.lent(loan), stream: stream)
                self.pump()
            case .success(.filled(let buffer)) where buffer.readableBytes == count:
                self.emit(.filled(buffer), stream: stream)
                self.pump()
            case .success:
                self.abort(stream, Problem.imageReadError("the file ended early"))
            case .failure(let error):
                self.abort(stream, Problem(for: error, target: nil))
            }
        }
    }

    /// A read failed: before the head went out the client gets the error status; after, the stream or
    /// connection is closed so that the client sees a truncated body, never wrong bytes.
    func abort(_ stream: BodyStream, _ problem: Problem) {
        self.dropStream()
        self.plane.logger.warning(
            "file read failed", metadata: ["request": "\(self.loggedRequestID)", "error": "\(problem.detail)"])
        if stream.headSent {
            if let context = self.context {
                self.plane.metrics.record(
                    route: context.endpoint, status: nil, sentBytes: context.sentBytes, started: context.started)
            }
            self.writer?.abort()
        } else {
            self.send(problem)
        }
    }
}
