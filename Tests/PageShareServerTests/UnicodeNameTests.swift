import EROFS
import EROFSTestSupport
import Foundation
import PageCache
import Testing

@testable import PageShareServer

/// Names are bytes: `café` in NFC (`caf\u{E9}`) and in NFD (`cafe\u{301}`) are two names, for files,
/// directories and image ids alike, whichever is asked for first. (Swift's `String ==` says they are equal.)
@Suite("NFC and NFD names are different names", .serialized)
struct UnicodeNameTests {
    static let nfc = "caf\u{E9}"
    static let nfd = "cafe\u{301}"

    /// An image with a file and a directory under each spelling, each holding different bytes.
    static func makeImage() throws -> TestImage {
        try TestImage(options: []) { root in
            try TestTree.write(root + "/" + Self.nfc, Array("precomposed\n".utf8))
            try TestTree.write(root + "/" + Self.nfd, Array("decomposed\n".utf8))
            try TestTree.write(
                root + "/dir-" + Self.nfc + "/inner", Array("inside precomposed\n".utf8), makingParent: true)
            try TestTree.write(
                root + "/dir-" + Self.nfd + "/inner", Array("inside decomposed\n".utf8), makingParent: true)
        }
    }

    static func encoded(_ name: String) -> String {
        name.utf8.map { byte in
            byte < 0x80 ? String(UnicodeScalar(byte)) : "%" + String(byte, radix: 16, uppercase: true)
        }.joined()
    }

    @Test("files and directories, in both request orders", arguments: [false, true])
    func filesAndDirectories(nfdFirst: Bool) async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([("img", try image.open(), "default", .digest)])
        let order = nfdFirst ? [Self.nfd, Self.nfc] : [Self.nfc, Self.nfd]
        for name in order {
            // (Not `name == Self.nfc`: that is canonical equivalence, true for both.)
            let expected = name.utf8.elementsEqual(Self.nfc.utf8) ? "precomposed\n" : "decomposed\n"
            let file = try await server.get("/v1/images/img/files/" + Self.encoded(name))
            #expect(file.status == 200 && file.bodyText == expected, "\(Array(name.utf8)): \(file.bodyText)")
            let inner = try await server.get("/v1/images/img/files/dir-" + Self.encoded(name) + "/inner", over: .http2)
            #expect(inner.bodyText == "inside " + expected, "dir-\(Array(name.utf8)): \(inner.bodyText)")
        }
        await server.stop()
    }

    @Test("image ids: attach both, detach one, the other stays", arguments: [false, true])
    func imageIDs(nfdFirst: Bool) async throws {
        let image = try Self.makeImage()
        defer { image.remove() }
        let server = try await ServerFixture.start([])
        let (first, second) = nfdFirst ? (Self.nfd, Self.nfc) : (Self.nfc, Self.nfd)
        for id in [first, second] {
            let attach = try await server.send(
                "POST", "/v1/admin/images", json: #"{"id":"\#(id)","path":"\#(image.path)"}"#)
            #expect(attach.status == 201, "\(Array(id.utf8)): \(attach.bodyText)")
        }
        let detach = try await server.send("DELETE", "/v1/admin/images/" + Self.encoded(first))
        #expect(detach.status == 204, "\(detach.bodyText)")
        let gone = try await server.get("/v1/images/\(Self.encoded(first))/files/\(Self.encoded(Self.nfc))")
        #expect(gone.status == 404)
        let kept = try await server.get("/v1/images/\(Self.encoded(second))/files/\(Self.encoded(Self.nfc))")
        #expect(kept.status == 200 && kept.bodyText == "precomposed\n", "\(kept.bodyText)")
        #expect(server.cache.registry.imageIDs.map { Array($0.utf8) } == [Array(second.utf8)])
        await server.stop()
    }
}
