import EROFS
import Logging
import NIOCore
import NIOHTTP1
import PageCache

/// The endpoints: `/metrics`, `/healthz`, `/readyz`, the admin API, and the data API's stat, listing and file
/// responses (a file body then streams, see `RequestResponder+Streaming.swift`).
extension RequestResponder {
    /// `/metrics`: the cache's series are published, then the exposition is rendered.
    func respondWithMetrics(_ exposition: @Sendable () -> [UInt8], for head: HTTPRequestHead) {
        self.route = .metrics
        self.plane.cache.publishMetrics(to: self.plane.metricsFactory, perImage: self.plane.perImageMetrics)
        self.plane.metrics.publish(self.plane.sendBudget)
        if let catalog = self.plane.admin?.catalog {
            self.plane.metrics.publishFailedImages(catalog.failedImageCount)
        }
        var response = ResponseHead(status: .ok, allocator: self.allocator)
        response.add("content-type", "text/plain; version=0.0.4; charset=utf-8")
        self.sendWhole(exposition(), head: response, for: head)
    }

    /// `/healthz` (alive) and `/readyz` (state restored, listeners up): no authentication, for probes.
    func respondToHealth(_ path: Substring, for head: HTTPRequestHead) {
        self.route = .health
        let ready = path == "/healthz" || self.plane.isReady
        var response = ResponseHead(status: ready ? .ok : .serviceUnavailable, allocator: self.allocator)
        response.add("content-type", "text/plain; charset=utf-8")
        self.sendWhole(
            Array((path == "/healthz" ? "ok\n" : ready ? "ready\n" : "starting\n").utf8), head: response, for: head)
    }

    /// Sends a 403 and counts it.
    func refuse(_ problem: Problem, for head: HTTPRequestHead) {
        self.plane.metrics.authFailed(.forbidden)
        self.send(problem, for: head)
    }

    /// `/v1/admin/...`: admin role only; answered by the ``AdminAPI`` off the event loop.
    func respondToAdmin(_ head: HTTPRequestHead, caller: Caller) {
        self.route = .admin
        guard let admin = self.plane.admin else { return self.send(Problem.noRoute(), for: head) }
        guard caller.isAdmin else {
            return self.refuse(.forbidden("the admin API needs the admin role"), for: head)
        }
        guard !self.bodyTooLarge else {
            return self.send(
                Problem(
                    "body-too-large", .payloadTooLarge,
                    "request bodies are limited to \(self.plane.limits.maximumBodyBytes) bytes"), for: head)
        }
        let segments: [String]
        do {
            segments = try RequestTarget.adminSegments(head.uri)
        } catch {
            return self.send(Problem(for: error, target: nil), for: head)
        }
        let (method, body) = (head.method, self.requestBody)
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
                self.sendWhole(reply.body ?? [], head: response, for: head)
            case .failure(let error):
                self.send(
                    error as? Problem ?? Problem("internal-error", .internalServerError, "internal error"), for: head)
            }
        }
    }

    func respondWithStat(_ target: RequestTarget, image: Image, for head: HTTPRequestHead) throws {
        let inode = try image.resolve(target.path, followingFinalSymlink: false)
        let description = try FileDescription(
            path: target.path, inode: inode, image: image, includeXattrs: true,
            includeExtents: target.queryValue("extents") == "1")
        self.sendJSON(try JSONBody.encode(description), for: head)
    }

    func respondWithListing(_ target: RequestTarget, image: Image, for head: HTTPRequestHead) throws {
        let limits = self.plane.limits
        var limit = limits.defaultListingLimit
        if let text = target.queryValue("limit") {
            guard let value = Int(text), value > 0, value <= limits.maximumListingLimit else {
                throw Problem.badRequest("limit must be 1-\(limits.maximumListingLimit)")
            }
            limit = value
        }
        let directory = try image.resolve(target.path)
        guard directory.fileType == .directory else {
            throw Problem("not-a-directory", .notFound, "\(target.path) is not a directory; read it at files/")
        }
        let listing = try MetadataResponses.listing(
            image: image, directory: directory, path: target.path, after: target.queryValue("after"), limit: limit)
        self.sendJSON(try JSONBody.encode(listing), for: head)
    }

    func respondWithFile(_ target: RequestTarget, visible: (TrustDomain) -> Bool, for head: HTTPRequestHead) throws {
        // One lookup of the image for visibility, path, inode and open file: the registry lock is taken once.
        let resolved = try self.plane.cache.resolveForReading(
            imageID: target.image, path: target.path, visible: visible)
        let (image, inode) = (resolved.image, resolved.inode)
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
            return self.startFile(file, inode: inode, image: image, for: head)
        }
        // The first open of a file in digest (or verify) mode hashes it: on a fill thread, not the event loop.
        let cache = self.plane.cache
        let imageID = target.image
        let promise = self.eventLoop.makePromise(of: CachedFile.self)
        Task(executorPreference: cache.fillExecutor) {
            promise.completeWith(Result { try cache.open(imageID: imageID, inode: inode) })
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            guard self.writer != nil else { return }  // the connection or stream is gone
            switch result {
            case .success(let file): self.startFile(file, inode: inode, image: image, for: head)
            case .failure(let error):
                self.send(Problem(for: error, target: target), for: head)
            }
        }
    }

    func startFile(_ file: CachedFile, inode: Inode, image: Image, for head: HTTPRequestHead) {
        let plan = FileResponsePlan.make(
            file: file, inode: inode, image: image, request: head, maximumRanges: self.plane.limits.maximumRanges,
            allocator: self.allocator)
        if let problem = plan.problem { return self.send(problem, for: head, fields: plan.head) }
        var responseHead = plan.head
        responseHead.add("date", HTTPDate.now())
        // A 304 carries no Content-Length: RFC 9110 §8.6 allows one only if it equals the 200's.
        if plan.status != .notModified { responseHead.add("content-length", decimal: plan.body.length) }
        let keepAlive = self.keepAlive
        if !keepAlive { responseHead.add("connection", "close") }
        self.status = plan.status
        guard head.method == .GET, plan.body.length > 0 else {
            self.writer?.writeHead(responseHead)
            return self.finish(keepAlive: keepAlive)
        }
        self.stream = BodyStream(file: file, responseHead: responseHead, body: plan.body, request: head)
        self.pump()
    }
}
