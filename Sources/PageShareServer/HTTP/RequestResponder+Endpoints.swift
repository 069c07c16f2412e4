import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// The endpoints: `/metrics`, `/healthz`, `/readyz`, the admin API, and the data API's stat, listing and file
/// responses (a file body then streams through a ``BodyStreamer``).
extension RequestResponder {
    /// `/metrics`: the cache's series are published, then the exposition is rendered.
    func respondWithMetrics() {
        guard let exposition = self.plane.exposition else { return self.send(Problem.noRoute()) }
        self.plane.cache.publishMetrics(to: self.plane.metricsFactory, perImage: self.plane.perImageMetrics)
        self.plane.metrics.publish(self.plane.sendBudget)
        if let catalog = self.plane.admin?.catalog {
            self.plane.metrics.publishFailedImages(catalog.failedImageCount)
        }
        var response = ResponseHead(status: .ok, allocator: self.allocator)
        response.add("content-type", "text/plain; version=0.0.4; charset=utf-8")
        self.sendWhole(exposition(), head: response)
    }

    /// `/healthz` (alive) and `/readyz` (state restored, listeners up): no authentication, for probes.
    func respondToHealth(ready: Bool, _ route: Route) {
        var response = ResponseHead(status: ready ? .ok : .serviceUnavailable, allocator: self.allocator)
        response.add("content-type", "text/plain; charset=utf-8")
        self.sendWhole(Array((route == .health ? "ok\n" : ready ? "ready\n" : "starting\n").utf8), head: response)
    }

    /// Sends a 403 and counts it.
    func refuse(_ problem: Problem) {
        self.plane.metrics.authFailed(.forbidden)
        self.send(problem)
    }

    /// `/v1/admin/...` (`segments` after `/v1/admin`, or why they do not parse): admin role only; answered by
    /// the ``AdminAPI`` off the event loop.
    func respondToAdmin(_ parsed: Result<[String], RequestTarget.Failure>, caller: Caller) {
        guard let admin = self.plane.admin, let method = self.context?.request.method else {
            return self.send(Problem.noRoute())
        }
        guard caller.isAdmin else { return self.refuse(.forbidden("the admin API needs the admin role")) }
        guard !self.bodyTooLarge else {
            return self.send(
                Problem(
                    "body-too-large", .payloadTooLarge,
                    "request bodies are limited to \(self.plane.limits.maximumBodyBytes) bytes"))
        }
        let segments: [String]
        switch parsed {
        case .success(let parsedSegments): segments = parsedSegments
        case .failure(let failure): return self.send(Problem(for: failure, target: nil))
        }
        let body = self.requestBody
        self.requestBody = []
        self.plane.logger.info(
            "admin request",
            metadata: [
                "request": "\(self.loggedRequestID)", "caller": "\(caller.name)", "method": "\(method)",
                "path": "\(segments.joined(separator: "/"))",
            ])
        let promise = self.eventLoop.makePromise(of: AdminAPI.Reply.self)
        promise.completeWithTask { try await admin.handle(method: method, segments: segments, body: body) }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard self.writer != nil else { return }  // the connection or stream is gone
            switch result {
            case .success(let reply):
                var response = ResponseHead(status: reply.status, allocator: self.allocator)
                if let location = reply.location { response.add("location", location) }
                if reply.body != nil { response.add("content-type", "application/json") }
                self.sendWhole(reply.body ?? [], head: response)
            case .failure(let error):
                self.send(error as? Problem ?? Problem("internal-error", .internalServerError, "internal error"))
            }
        }
    }

    func respondWithStat(_ target: RequestTarget, image: Image) throws {
        self.sendJSON(try MetadataResponses.stat(target, image: image))
    }

    func respondWithListing(_ target: RequestTarget, image: Image) throws {
        self.sendJSON(try MetadataResponses.listing(target, image: image, limits: self.plane.limits))
    }

    func respondWithFile(_ target: RequestTarget, visible: (TrustDomain) -> Bool) throws {
        // One lookup of the image for visibility, path, inode and open file; the registry's lock is taken only
        // when another request of the same read did not just look the image up.
        let cache = self.plane.cache
        let resolved =
            self.scope.isReading
            ? try cache.resolveForReading(
                imageID: target.image, path: target.path, visible: visible, lookup: &self.scope.imageLookup)
            : try cache.resolveForReading(imageID: target.image, path: target.path, visible: visible)
        let (stamp, inode) = (resolved.stamp, resolved.inode)
        switch inode.fileType {
        case .regular: break
        case .directory:
            throw Problem(
                "is-a-directory", .notFound,
                "\(target.path) is a directory; list it at /v1/images/\(target.image)/dirs\(target.path)")
        default:
            throw Problem("not-a-regular-file", .notFound, "\(target.path) is a \(inode.fileType.rawValue), not a file")
        }
        if let file = resolved.file {
            return self.startFile(file, inode: inode, stamp: stamp)
        }
        // The first open of a file in digest (or verify) mode hashes it: on a fill thread, not the event loop.
        let imageID = target.image
        let promise = self.eventLoop.makePromise(of: CachedFile.self)
        Task(executorPreference: cache.fillExecutor) {
            promise.completeWith(Result { try cache.open(imageID: imageID, inode: inode) })
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard self.writer != nil else { return }  // the connection or stream is gone
            switch result {
            case .success(let file): self.startFile(file, inode: inode, stamp: stamp)
            case .failure(let error):
                self.send(Problem(for: error, target: target))
            }
        }
    }

    func startFile(_ file: CachedFile, inode: Inode, stamp: ImageStamp) {
        guard let context = self.context else { return }
        let plan = FileResponsePlan.make(
            file: file, inode: inode, stamp: stamp, request: context.request,
            maximumRanges: self.plane.limits.maximumRanges,
            allocator: self.allocator)
        if let problem = plan.problem { return self.send(problem, fields: plan.head) }
        let body = plan.body
        // The head taken out of the plan, so that adding to it does not copy its buffer (shared with the plan).
        var responseHead = (consume plan).head
        responseHead.add("date", HTTPDate.now())
        // A 304 carries no Content-Length: RFC 9110 §8.6 allows one only if it equals the 200's.
        let status = responseHead.status
        if status != .notModified { responseHead.add("content-length", decimal: body.length) }
        if !context.request.keepAlive { responseHead.add("connection", "close") }
        context.status = status
        guard context.request.isGet, body.length > 0 else {
            self.writer?.writeHead(responseHead)
            return self.finish()
        }
        if let bytes = self.residentSmallBody(file, body) {
            self.writer?.writeHead(responseHead)
            context.sentBytes += bytes.readableBytes
            self.writeCharged(bytes)
            return self.finish()
        }
        guard let writer = self.writer else { return }
        let streamer = BodyStreamer(
            source: file, head: responseHead, body: body, writer: writer, owner: self,
            settings: .init(
                chunkBytes: self.plane.limits.chunkBytes, pageWrites: self.plane.pageWrites,
                fillExecutor: self.plane.cache.fillExecutor, allocator: self.allocator),
            eventLoop: self.eventLoop)
        self.body = streamer
        streamer.start()
    }

    /// Bodies up to this size whose bytes are all resident are read at once and sent whole.
    static let smallBodyBytes = 16 * 1024

    /// The bytes of a small body of one file range when every one of them is resident (where pages are
    /// copied, not lent): it is then sent whole like a metadata answer, without a ``BodyStreamer`` — an object
    /// and a dozen references taken per request, for what is most requests. Nil otherwise: the streamer
    /// reads it, filling what is missing (nothing was counted here).
    private func residentSmallBody(_ file: CachedFile, _ body: ResponseBody) -> ByteBuffer? {
        guard self.plane.pageWrites == .copy, body.length <= Self.smallBodyBytes, body.segments.count == 1,
            case .file(let offset, let count) = body.segments[0]
        else { return nil }
        let length = Int(count)
        var buffer = self.allocator.buffer(capacity: length)
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { memory in
            file.readResidentWhole(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: memory[0..<length]))
        }
        return read == length ? buffer : nil
    }
}
