import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Testing

@testable import PageShareServer

/// Every status the data API answers with, from a real server.
@Suite("Status codes and metadata", .serialized)
struct StatusCodeTests {
    @Test("400, 404, 405: bad paths, unknown images, directories, other methods; problem+json bodies")
    func errors() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let cases: [(String, Int, String)] = [
            ("/v1/images/img/files/a%00b", 400, "bad-request"),
            ("/v1/images/img/files/../../etc/passwd", 400, "bad-request"),
            ("/v1/images/img/files/%2e%2e/x", 400, "bad-request"),
            ("/v1/images/img/files/bad%zzescape", 400, "bad-request"),
            ("/v1/images/img/files/trunc%4", 400, "bad-request"),
            ("/v1/images/img/files/" + String(repeating: "n", count: 256), 400, "bad-request"),
            ("/v1/images/img/files/" + String(repeating: "d/", count: 2100), 400, "bad-request"),
            ("/v1/images/nope/files/one", 404, "unknown-image"),
            ("/v1/images/img/files/missing", 404, "not-found"),
            ("/v1/images/img/files/one/below-a-file", 404, "not-found"),
            ("/v1/images/img/files/dir", 404, "is-a-directory"),
            ("/v1/images/img/files/", 404, "is-a-directory"),
            ("/v1/images/img/dirs/one", 404, "not-a-directory"),
            ("/v1/images/img/dirs/?limit=0", 400, "bad-request"),
            ("/v2/whatever", 404, "no-route"),
            ("/v1/images/img/unknown/one", 404, "no-route"),
        ]
        for (target, status, problem) in cases {
            for transport in [ServerFixture.Transport.http1, .http2] {
                let response = try await server.get(target, over: transport)
                #expect(response.status == status, "\(target) over \(transport)")
                #expect(response.header("content-type") == "application/problem+json", "\(target)")
                #expect(response.problemType == "urn:pageshare:problem:\(problem)", "\(target): \(response.bodyText)")
            }
        }
        let directory = try await server.get("/v1/images/img/files/dir")
        #expect(directory.bodyText.contains("/v1/images/img/dirs/dir"), "the problem points at dirs/")
        let post = try await server.get("/v1/images/img/files/one", arguments: ["-X", "POST"])
        #expect(post.status == 405 && post.header("allow") == "GET, HEAD")
        let escaped = try await server.get("/v1/images/img/files/..%2f..%2fetc%2fpasswd")
        #expect(escaped.status == 400, "encoded slashes are decoded once and cannot climb out either")
        await server.stop()
    }

    @Test("416, 304, 412, If-Range, refused range sets served whole, HEAD")
    func conditionalAndRangeStatuses() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start(
            [("img", try image.open(), "default", .digest)], maximumRanges: 4)
        let target = "/v1/images/img/files/page"
        let page = ServedTree.content("page")!
        let first = try await server.get(target)
        let etag = try #require(first.header("etag"))
        let lastModified = try #require(first.header("last-modified"))
        #expect(etag.hasPrefix("\"sha256-") && etag.hasSuffix("\""))

        for transport in [ServerFixture.Transport.http1, .http2] {
            let unsatisfiable = try await server.get(target, over: transport, headers: ["Range": "bytes=4096-"])
            #expect(unsatisfiable.status == 416 && unsatisfiable.header("content-range") == "bytes */4096")
            #expect(unsatisfiable.problemType == "urn:pageshare:problem:range-not-satisfiable")
            #expect(unsatisfiable.header("etag") == first.header("etag"), "the validators still come with it")
            let notModified = try await server.get(target, over: transport, headers: ["If-None-Match": etag])
            #expect(notModified.status == 304 && notModified.body.isEmpty)
            #expect(notModified.header("content-length") == nil && notModified.header("etag") == etag)
            #expect(
                try await server.get(target, over: transport, headers: ["If-None-Match": "\"other\", W/\(etag)"]).status
                    == 304)
            #expect(
                try await server.get(target, over: transport, headers: ["If-Modified-Since": lastModified]).status
                    == 304)
            let stale = try await server.get(
                target, over: transport, headers: ["If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"])
            #expect(stale.status == 200 && stale.body == page)
            let failed = try await server.get(target, over: transport, headers: ["If-Match": "\"other\""])
            #expect(failed.status == 412 && failed.problemType == "urn:pageshare:problem:precondition-failed")
            #expect(try await server.get(target, over: transport, headers: ["If-Match": etag]).status == 200)
            let rangeMatches = try await server.get(
                target, over: transport, headers: ["Range": "bytes=0-9", "If-Range": etag])
            #expect(rangeMatches.status == 206 && rangeMatches.body == Array(page[0...9]))
            let rangeStale = try await server.get(
                target, over: transport, headers: ["Range": "bytes=0-9", "If-Range": "\"other\""])
            #expect(rangeStale.status == 200 && rangeStale.body == page)
            let byDate = try await server.get(
                target, over: transport, headers: ["Range": "bytes=0-9", "If-Range": lastModified])
            #expect(byDate.status == 206)
            // Refused as abusive: served whole (200), as RFC 9110 §14.2 allows.
            for abusive in ["bytes=0-99,50-150", "bytes=0-0,2-2,4-4,6-6,8-8", "bytes=0-4095,0-4095"] {
                let response = try await server.get(target, over: transport, headers: ["Range": abusive])
                #expect(response.status == 200 && response.body == page, "\(abusive)")
            }
            let otherUnit = try await server.get(target, over: transport, headers: ["Range": "items=0-1"])
            #expect(otherUnit.status == 200)
            // curl -I writes the response head where the body would go: nothing of the file follows it.
            let head = try await server.get(target, over: transport, arguments: ["-I"])
            #expect(head.status == 200 && head.header("content-length") == "4096")
            #expect(head.body.count < 1024 && head.bodyText.lowercased().contains("content-length: 4096"))
            #expect(head.header("etag") == etag)
        }
        await server.stop()
    }

    @Test("stat describes files and symlinks; dirs pages through a large directory")
    func metadata() async throws {
        let image = try TestImage(options: []) { try ServedTree.write(at: $0) }
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .none)])
        let stat = try await server.get("/v1/images/img/stat/link-to-big", over: .http2)
        #expect(stat.status == 200 && stat.header("content-type") == "application/json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stat.body)) as? [String: Any])
        #expect(object["type"] as? String == "symlink")
        #expect(object["symlinkTarget"] as? String == "big.bin")
        let file = try #require(
            try JSONSerialization.jsonObject(with: Data(try await server.get("/v1/images/img/stat/big.bin").body))
                as? [String: Any])
        #expect(file["size"] as? Int == 2_500_000 && file["type"] as? String == "regular")

        var names: [String] = []
        var after: String? = nil
        var pages = 0
        repeat {
            let query = "?limit=50" + (after.map { "&after=" + ServedTree.encode($0) } ?? "")
            let listing = try await server.get("/v1/images/img/dirs/many" + query)
            #expect(listing.status == 200)
            let page = try #require(try JSONSerialization.jsonObject(with: Data(listing.body)) as? [String: Any])
            let entries = try #require(page["entries"] as? [[String: Any]])
            names += entries.compactMap { $0["name"] as? String }
            after = page["next"] as? String
            pages += 1
        } while after != nil && pages < 10
        #expect(pages == 3)
        #expect(names == (0..<120).map { "entry-\(1000 + $0)" })
        await server.stop()
    }
}
