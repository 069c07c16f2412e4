import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Testing

@testable import PageShareServer

/// The admin API against a real server: attach, list, inspect, detach, domains, quotas, cache totals, page
/// drops, and every error path; and the state directory across a restart.
@Suite("Admin API", .serialized)
final class AdminAPITests {
    /// Two images of the same tree (so every file is shared in one domain) and a malformed file, made for
    /// each test and removed after it.
    let first: TestImage
    let second: TestImage
    let garbage: String

    init() throws {
        self.first = try TestImage(options: []) { try ServedTree.write(at: $0) }
        self.second = try TestImage(options: ["-zlz4hc"]) { try ServedTree.write(at: $0) }
        self.garbage = self.first.directory.path + "/garbage.img"
        try TestTree.write(self.garbage, TestTree.pattern(8192, seed: 9))
    }

    deinit {
        self.first.remove()
        self.second.remove()
    }

    static func json(_ response: ServerFixture.Response) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.bodyText)")
    }

    @Test("attach, list, get, detach; 201 with Location, 204, and the image is served only while attached")
    func lifecycle() async throws {
        let server = try await ServerFixture.start([])
        let attach = try await server.send(
            "POST", "/v1/admin/images",
            json: #"{"id":"one","path":"\#(self.first.path)","domain":"team","fingerprint":"xattr"}"#)
        #expect(attach.status == 201, "\(attach.bodyText)")
        #expect(attach.header("location") == "/v1/admin/images/one")
        let created = try Self.json(attach)
        #expect(created["state"] as? String == "ready" && created["mode"] as? String == "xattr")
        #expect(created["domain"] as? String == "team" && created["origin"] as? String == "api")
        let second2 = try await server.send(
            "POST", "/v1/admin/images",
            json: #"{"id":"two","path":"\#(self.second.path)","domain":"team","verify":true}"#,
            over: .http2)
        #expect(second2.status == 201, "\(second2.bodyText)")

        let list = try Self.json(try await server.send("GET", "/v1/admin/images"))
        let ids = (list["images"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        #expect(ids == ["one", "two"])
        let served = try await server.get("/v1/images/two/files/page")
        #expect(served.status == 200 && served.body == ServedTree.content("page"))

        let got = try Self.json(try await server.send("GET", "/v1/admin/images/two"))
        #expect(got["verify"] as? Bool == true)
        #expect((got["statistics"] as? [String: Any])?["logicalReadBytes"] as? Int == 4096)

        let detach = try await server.send("DELETE", "/v1/admin/images/two")
        #expect(detach.status == 204 && detach.body.isEmpty && detach.header("content-length") == nil)
        #expect(try await server.get("/v1/images/two/files/page").status == 404)
        #expect(try await server.send("GET", "/v1/admin/images/two").status == 404)
        #expect(
            try await server.send("DELETE", "/v1/admin/images/two").problemType == "urn:pageshare:problem:unknown-image"
        )
        #expect(try await server.get("/v1/images/one/files/page").body == ServedTree.content("page"))
        await server.stop()
    }

    @Test("400 bad bodies, 409 taken id, 422 unusable images, 404, 405, 413; nothing changes on an error")
    func errors() async throws {
        let server = try await ServerFixture.start([])
        #expect(
            try await server.send("POST", "/v1/admin/images", json: #"{"id":"one","path":"\#(self.first.path)"}"#)
                .status
                == 201)
        let cases: [(String, String, String?, Int, String)] = [
            ("POST", "/v1/admin/images", #"{"id":"one","path":"\#(self.second.path)"}"#, 409, "image-exists"),
            ("POST", "/v1/admin/images", #"{"id":"x","path":"\#(self.garbage)"}"#, 422, "image-unusable"),
            ("POST", "/v1/admin/images", #"{"id":"x","path":"/nonexistent/image.erofs"}"#, 422, "image-unusable"),
            ("POST", "/v1/admin/images", #"{"id":"x","path":"\#(self.first.directory.path)"}"#, 422, "image-unusable"),
            ("POST", "/v1/admin/images", #"{"id":"x","path":"relative.img"}"#, 400, "bad-request"),
            ("POST", "/v1/admin/images", #"{"id":"a/b","path":"\#(self.first.path)"}"#, 400, "bad-request"),
            (
                "POST", "/v1/admin/images", #"{"id":"x","path":"\#(self.first.path)","domain":"bad domain"}"#, 400,
                "bad-request"
            ),
            (
                "POST", "/v1/admin/images", #"{"id":"x","path":"\#(self.first.path)","fingerprint":"md5"}"#, 400,
                "bad-request"
            ),
            ("POST", "/v1/admin/images", #"{"id":"x"}"#, 400, "bad-request"),
            ("POST", "/v1/admin/images", #"{"id":"#, 400, "bad-request"),
            ("POST", "/v1/admin/images", nil, 400, "bad-request"),
            ("PUT", "/v1/admin/images", "{}", 405, "method-not-allowed"),
            ("GET", "/v1/admin/images/missing", nil, 404, "unknown-image"),
            ("DELETE", "/v1/admin/images/missing/pages", nil, 404, "unknown-image"),
            ("GET", "/v1/admin/domains/none", nil, 404, "unknown-domain"),
            ("PUT", "/v1/admin/domains/default/quota", #"{"bytes":-1}"#, 400, "bad-request"),
            ("PUT", "/v1/admin/domains/default/quota", #"{"bytes":"lots"}"#, 400, "bad-request"),
            ("GET", "/v1/admin/nothing", nil, 404, "no-route"),
            ("GET", "/v1/admin/images/one/files", nil, 404, "no-route"),
            ("POST", "/v1/admin/cache", "{}", 405, "method-not-allowed"),
            // A segment over 255 bytes is the admin API's bad request, whatever the method (it was a 405 once).
            ("DELETE", "/v1/admin/images/" + String(repeating: "0", count: 300), nil, 400, "bad-request"),
            ("PUT", "/v1/admin/domains/" + String(repeating: "0", count: 300) + "/quota", "{}", 400, "bad-request"),
        ]
        for (method, target, body, status, problem) in cases {
            let response = try await server.send(method, target, json: body)
            #expect(response.status == status, "\(method) \(target) \(body ?? ""): \(response.bodyText)")
            #expect(response.problemType == "urn:pageshare:problem:\(problem)", "\(method) \(target)")
        }
        // A FIFO would block an open for reading until a writer comes: refused before it is opened.
        let fifo = self.first.directory.path + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let pipe = try await server.send("POST", "/v1/admin/images", json: #"{"id":"x","path":"\#(fifo)"}"#)
        #expect(pipe.status == 422 && pipe.bodyText.contains("not a regular file or block device"))
        let unusable = try await server.send("POST", "/v1/admin/images", json: #"{"id":"x","path":"\#(self.garbage)"}"#)
        #expect(unusable.bodyText.contains("not an EROFS image"), "the format error's message: \(unusable.bodyText)")
        let methodNotAllowed = try await server.send("PATCH", "/v1/admin/images/one")
        #expect(methodNotAllowed.status == 405 && methodNotAllowed.header("allow") == "GET, DELETE")
        let huge = String(repeating: " ", count: 70_000)
        let tooLarge = try await server.send("POST", "/v1/admin/images", json: #"{"id":"big",\#(huge)"path":"/x"}"#)
        #expect(tooLarge.status == 413)
        let list = try Self.json(try await server.send("GET", "/v1/admin/images"))
        #expect((list["images"] as? [Any])?.count == 1, "failed requests attached nothing")
        #expect(server.cache.registry.imageIDs == ["one"])
        await server.stop()
    }

    @Test("domains, quotas, cache totals and page drops with exact numbers")
    func domainsAndCache() async throws {
        let server = try await ServerFixture.start([])
        for (id, image) in [("one", self.first), ("two", self.second)] {
            let body = #"{"id":"\#(id)","path":"\#(image.path)","domain":"team","fingerprint":"digest"}"#
            #expect(try await server.send("POST", "/v1/admin/images", json: body).status == 201)
        }
        // Read the same 2 pages (page-plus-one: 4097 bytes) through both images: resident once, saved once.
        for id in ["one", "two"] {
            #expect(
                try await server.get("/v1/images/\(id)/files/page-plus-one").body == ServedTree.content("page-plus-one")
            )
        }
        let domain = try Self.json(try await server.send("GET", "/v1/admin/domains/team"))
        #expect(domain["residentBytes"] as? Int == 8192 && domain["savedBytes"] as? Int == 8192)
        #expect(domain["images"] as? [String] == ["one", "two"] && domain["quotaBytes"] == nil)
        let quota = try await server.send("PUT", "/v1/admin/domains/team/quota", json: #"{"bytes":1048576}"#)
        #expect(try Self.json(quota)["quotaBytes"] as? Int == 1_048_576)
        #expect(server.cache.registry.quota(for: try TrustDomain("team")) == 1_048_576)
        let cache = try Self.json(try await server.send("GET", "/v1/admin/cache"))
        #expect(cache["residentBytes"] as? Int == 8192 && cache["attachedImages"] as? Int == 2)
        #expect(cache["budgetBytes"] as? Int == 64 << 20 && cache["pageSize"] as? Int == 4096)
        let domains = try Self.json(try await server.send("GET", "/v1/admin/domains"))
        #expect((domains["domains"] as? [[String: Any]])?.map { $0["name"] as? String } == ["team"])
        let dropped = try Self.json(try await server.send("DELETE", "/v1/admin/domains/team/pages"))
        #expect(dropped["droppedBytes"] as? Int == 8192)
        #expect(server.cache.residentBytes == 0)
        #expect(try await server.get("/v1/images/one/files/page-plus-one").body == ServedTree.content("page-plus-one"))
        let imageDrop = try Self.json(try await server.send("DELETE", "/v1/admin/images/two/pages"))
        #expect(imageDrop["droppedBytes"] as? Int == 8192, "image two shares the refilled pages")
        let removed = try await server.send("DELETE", "/v1/admin/domains/team/quota")
        let removedBody = try Self.json(removed)
        #expect(removed.status == 200 && removedBody["quotaBytes"] == nil)
        await server.stop()
    }

    @Test("digest mode: attaching with progress, then ready at 100%")
    func digestProgress() async throws {
        let server = try await ServerFixture.start([])
        let attach = try await server.send(
            "POST", "/v1/admin/images", json: #"{"id":"d","path":"\#(self.second.path)","fingerprint":"digest"}"#)
        let state = try Self.json(attach)["state"] as? String
        #expect(state == "attaching" || state == "ready")
        var status: [String: Any] = [:]
        for _ in 0..<500 {
            status = try Self.json(try await server.send("GET", "/v1/admin/images/d"))
            if status["state"] as? String == "ready" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(status["state"] as? String == "ready")
        let progress = try #require(status["progress"] as? [String: Any])
        let total = ServedTree.files.reduce(0) { $0 + $1.1.count } + 120
        #expect(progress["percent"] as? Double == 100 && progress["bytesTotal"] as? Int == total)
        #expect(
            progress["bytesDone"] as? Int == total && progress["filesDone"] as? Int == progress["filesTotal"] as? Int)
        await server.stop()
    }

    @Test("state directory: attached images and quotas come back after a restart; a broken one is reported")
    func restart() async throws {
        let state = try TemporaryDirectory("state")
        defer { state.remove() }
        let server = try await ServerFixture.start([], stateDirectory: state.path)
        for (id, image) in [("one", self.first), ("two", self.second)] {
            #expect(
                try await server.send("POST", "/v1/admin/images", json: #"{"id":"\#(id)","path":"\#(image.path)"}"#)
                    .status == 201)
        }
        #expect(
            try await server.send("PUT", "/v1/admin/domains/default/quota", json: #"{"bytes":65536}"#).status == 200)
        let before = try Self.json(try await server.send("GET", "/v1/admin/images"))["images"] as? [[String: Any]]
        #expect(before?.count == 2)
        await server.stop()
        #expect(!FileManager.default.fileExists(atPath: state.path + "/state.json.tmp"), "no temporary file is left")

        // A restart with the same state directory: both images, the quota.
        let again = try await ServerFixture.start([], stateDirectory: state.path)
        let after = try Self.json(try await again.send("GET", "/v1/admin/images"))["images"] as? [[String: Any]]
        #expect(after?.map { $0["id"] as? String } == ["one", "two"])
        #expect(after?.allSatisfy { $0["state"] as? String != "failed" } == true)
        #expect(try await again.get("/v1/images/two/files/page").body == ServedTree.content("page"))
        #expect(again.cache.registry.quota(for: try TrustDomain("default")) == 65536)
        #expect(try await again.send("DELETE", "/v1/admin/images/one").status == 204)
        await again.stop()

        // The image file of "two" disappears: the daemon still starts, "two" is listed as failed with the reason.
        try FileManager.default.removeItem(atPath: self.second.path)
        let broken = try await ServerFixture.start([], stateDirectory: state.path)
        let listed = try Self.json(try await broken.send("GET", "/v1/admin/images"))["images"] as? [[String: Any]]
        #expect(listed?.count == 1 && listed?.first?["id"] as? String == "two")
        #expect(listed?.first?["state"] as? String == "failed")
        #expect((listed?.first?["reason"] as? String)?.contains(self.second.path) == true)
        #expect(try await broken.get("/v1/images/two/files/page").status == 404)
        #expect(
            try await broken.send("DELETE", "/v1/admin/images/two").status == 204, "a failed image can be forgotten")
        await broken.stop()
        #expect(try StateStore(directory: state.path).load() == PersistentState(images: [], quotas: ["default": 65536]))
    }

    @Test("StateStore: round trip; a corrupt file is an error naming it, not an empty state")
    func stateStore() throws {
        let directory = try TemporaryDirectory("store")
        defer { directory.remove() }
        let store = try StateStore(directory: directory.path + "/nested/state")
        #expect(try store.load() == PersistentState())
        let state = PersistentState(
            images: [
                ImageRecord(id: "a", path: "/a.img", domain: "d", fingerprint: .digest, verify: true, devices: ["/b"])
            ],
            quotas: ["d": 4096])
        try store.save(state)
        #expect(try store.load() == state)
        try TestTree.write(directory.path + "/nested/state/state.json", Array("{not json".utf8))
        #expect(throws: ControlError.self) { try store.load() }
        // Hand edits: an id twice (named with its line; NFC and NFD spellings are two ids), a version this
        // daemon does not write.
        let twice = """
            {
              "version": 1,
              "images": [
                {"id": "caf\u{E9}", "path": "/a.img"},
                {"id": "cafe\u{301}", "path": "/b.img"},
                {"id": "caf\u{E9}", "path": "/c.img"}
              ],
              "quotas": {}
            }
            """
        try TestTree.write(directory.path + "/nested/state/state.json", Array(twice.utf8))
        #expect {
            try store.load()
        } throws: { error in
            "\(error)".contains("state.json:6: image id caf\u{E9} appears twice")
        }
        try TestTree.write(
            directory.path + "/nested/state/state.json", Array(#"{"version": 999, "images": [], "quotas": {}}"#.utf8))
        #expect {
            try store.load()
        } throws: { error in
            "\(error)".contains("has version 999; this pageshare reads version 1")
        }
    }

    @Test(
        "check: true reads the whole image first and refuses a forged one with 422, naming the file",
        .enabled(if: Fixtures.isAvailable, "needs ../shared/fixtures"))
    func checkBeforeAttaching() async throws {
        let server = try await ServerFixture.start([])
        let (bytes, path) = try ImagePatch.forgedIshareFixture()
        let forged = self.first.directory.path + "/forged.img"
        try TestTree.write(forged, bytes)
        let refused = try await server.send(
            "POST", "/v1/admin/images", json: #"{"id":"forged","path":"\#(forged)","check":true}"#)
        #expect(refused.status == 422 && refused.problemType == "urn:pageshare:problem:image-unusable")
        #expect(refused.bodyText.contains("/\(path): corrupt image: content does not match"), "\(refused.bodyText)")
        #expect(server.cache.registry.imageIDs.isEmpty)
        let unchecked = try await server.send("POST", "/v1/admin/images", json: #"{"id":"forged","path":"\#(forged)"}"#)
        #expect(unchecked.status == 201, "without check the image's own label is trusted")
        let good = try Fixtures.manifest("ishare-plain-B").imagePath
        let checked = try await server.send(
            "POST", "/v1/admin/images", json: #"{"id":"good","path":"\#(good)","check":true}"#)
        #expect(checked.status == 201, "\(checked.bodyText)")
        await server.stop()
    }
}
