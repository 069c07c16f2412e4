import Foundation
import NIOCore
import NIOHTTP1
import PageCache

/// The admin REST API under `/v1/admin` (operators only): attach, list, inspect and detach images, domains
/// with their accounting and quotas, the cache's totals, and dropping cached pages. Changes go through the
/// ``ImageCatalog`` (persisted before they are acknowledged).
struct AdminAPI: Sendable {
    let catalog: ImageCatalog
    var cache: SharedPageCache { self.catalog.cache }
    /// Images, domains and quotas as attached: read here, changed through the catalog.
    var registry: ImageRegistry { self.catalog.cache.registry }

    /// A response: status, JSON body (nil: none), and a `Location` for a created resource.
    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var body: [UInt8]?
        var location: String?
    }

    /// Answers `method` on `segments` (the percent-decoded path segments after `/v1/admin`), with the
    /// request body, through the ``AdminRouter`` table.
    /// - Throws: ``Problem`` for every error response.
    func handle(method: HTTPMethod, segments: [String], body: [UInt8]) async throws(Problem) -> Reply {
        let (handler, call) = try AdminRouter.api.route(method: method, segments: segments, body: body)
        do {
            return try await handler(self, call)
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem("internal-error", .internalServerError, "internal error")
        }
    }

    // MARK: Handlers

    func listImages() async throws(Problem) -> Reply {
        try Self.ok(AdminBodies.ImageList(images: await self.catalog.list()))
    }

    func attach(_ body: [UInt8]) async throws(Problem) -> Reply {
        let record = try Self.decode(ImageRecord.self, from: body)
        let status = try await Self.control { () throws(ControlError) in try await self.catalog.attach(record) }
        return Reply(status: .created, body: try Self.encode(status), location: AdminPath.image(record.id))
    }

    func image(_ id: String) async throws(Problem) -> Reply {
        try Self.ok(try await Self.control { () throws(ControlError) in try await self.catalog.status(id: id) })
    }

    func detach(_ id: String) async throws(Problem) -> Reply {
        try await Self.control { () throws(ControlError) in try await self.catalog.detach(id: id) }
        return Reply(status: .noContent)
    }

    func dropPages(image id: String) throws(Problem) -> Reply {
        do {
            return try Self.ok(AdminBodies.DroppedPages(droppedBytes: try self.cache.dropPages(imageID: id)))
        } catch {
            throw Problem.unknownImage(id)
        }
    }

    func listDomains() throws(Problem) -> Reply {
        try Self.ok(AdminBodies.DomainList(domains: self.domains()))
    }

    func domainStatus(_ name: String) throws(Problem) -> Reply {
        try Self.ok(try self.domain(name))
    }

    /// Sets the quota from a `QuotaRequest` body, or removes it (`body` nil: DELETE).
    func setQuota(domain name: String, body: [UInt8]?) async throws(Problem) -> Reply {
        var bytes: Int?
        if let body { bytes = try Self.decode(AdminBodies.QuotaRequest.self, from: body).bytes }
        try await Self.control { () throws(ControlError) in try await self.catalog.setQuota(bytes, domain: name) }
        return try Self.ok(try self.domain(name))
    }

    func dropPages(domain name: String) throws(Problem) -> Reply {
        let domain = try self.knownDomain(name)
        return try Self.ok(AdminBodies.DroppedPages(droppedBytes: self.cache.dropPages(domain: domain)))
    }

    func cacheStatus() throws(Problem) -> Reply {
        try Self.ok(self.cacheSummary())
    }

    // MARK: Views

    /// Every domain the registry knows, with its images, quota, unit of sharing and accounting.
    private func domains() -> [AdminBodies.DomainStatus] {
        let statistics = self.cache.allStatistics()
        let images = self.registry.imageIDsByDomain
        return self.registry.domains.map { self.status(of: $0, images: images[$0] ?? [], statistics[$0]) }
    }

    private func domain(_ name: String) throws(Problem) -> AdminBodies.DomainStatus {
        let domain = try self.knownDomain(name)
        return self.status(of: domain, images: self.registry.imageIDsByDomain[domain] ?? [], nil)
    }

    private func status(
        of domain: TrustDomain, images: [String], _ statistics: DomainStatistics?
    ) -> AdminBodies.DomainStatus {
        AdminBodies.DomainStatus(
            name: domain.name, quotaBytes: self.registry.quota(for: domain), images: images,
            sharing: self.registry.sharing(for: domain), statistics: statistics ?? self.cache.statistics(for: domain))
    }

    private func knownDomain(_ name: String) throws(Problem) -> TrustDomain {
        guard let domain = try? TrustDomain(name), self.registry.domains.contains(domain) else {
            throw Problem("unknown-domain", .notFound, "no domain \(name) is known")
        }
        return domain
    }

    private func cacheSummary() -> AdminBodies.CacheStatus {
        let summary = self.cache.summary
        let domains = self.cache.allStatistics().values
        return AdminBodies.CacheStatus(
            budgetBytes: summary.budgetBytes, pageSize: summary.pageSize, residentBytes: summary.residentBytes,
            metadataBytes: summary.metadataBytes, savedBytes: domains.reduce(0) { $0 + $1.savedBytes },
            chunkSavedBytes: domains.reduce(0) { $0 + $1.chunkSavedBytes }, attachedImages: summary.attachedImages,
            dedupInodes: summary.dedupInodes, hits: domains.reduce(0) { $0 + $1.hits },
            misses: domains.reduce(0) { $0 + $1.misses }, sharing: summary.sharing.rawValue,
            residentChunks: summary.residentChunks, chunkMapBytes: summary.chunkMapBytes,
            chunkWasteBytes: summary.chunkWasteBytes)
    }

    // MARK: Helpers

    private static func ok(_ value: some Encodable) throws(Problem) -> Reply {
        Reply(status: .ok, body: try Self.encode(value))
    }

    private static func encode(_ value: some Encodable) throws(Problem) -> [UInt8] {
        do {
            return try JSONBody.encode(value)
        } catch {
            throw Problem("internal-error", .internalServerError, "cannot encode the response")
        }
    }

    private static func decode<Body: Decodable>(_ type: Body.Type, from body: [UInt8]) throws(Problem) -> Body {
        guard !body.isEmpty else { throw Problem.badRequest("a JSON body is required") }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw Problem.badRequest("bad JSON body: \(DecodingFailure.describe(error))")
        }
    }

    /// Runs a catalog change, mapping its error to the problem response.
    private static func control<T>(_ body: () async throws(ControlError) -> T) async throws(Problem) -> T {
        do {
            return try await body()
        } catch {
            throw Problem(error)
        }
    }
}

extension Problem {
    /// The response for a control-plane error.
    init(_ error: ControlError) {
        switch error.code {
        case .invalidRequest: self.init("bad-request", .badRequest, error.message)
        case .unknownImage: self.init("unknown-image", .notFound, error.message)
        case .imageExists: self.init("image-exists", .conflict, error.message)
        case .imageUnusable: self.init("image-unusable", .unprocessableEntity, error.message)
        default: self.init("state-write-failed", .internalServerError, error.message)
        }
    }
}
