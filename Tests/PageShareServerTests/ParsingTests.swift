import NIOHTTP1
import Testing

@testable import PageShareServer

/// The request-target, Range, date and validator rules, without a server.
@Suite("Request parsing")
struct ParsingTests {
    @Test("request targets: routes, one percent-decoding, normalisation, refusals")
    func targets() throws {
        let target = try RequestTarget.parse("/v1/images/app%2Dv1/files/usr//lib/./x%20y.so?limit=5&after=a%2Bb")
        #expect(target.image == "app-v1" && target.resource == .files && target.path == "/usr/lib/x y.so")
        #expect(target.queryValue("limit") == "5" && target.queryValue("after") == "a+b")
        #expect(try RequestTarget.parse("/v1/images/i/dirs").path == "/")
        #expect(try RequestTarget.parse("/v1/images/i/files/a/b/../c").path == "/a/c")
        #expect(try RequestTarget.parse("/v1/images/i/files/%2525").path == "/%25", "decoded once")
        // Paths that need no decoding take a shorter way; they must come out the same.
        let plain = [
            "a/b.so": "/a/b.so", "...": "/...", ".hidden/..x": "/.hidden/..x", "a/./b": "/a/b",
            "a//b": "/a/b", "a/..": "/", ".": "/", "ü/ñ": "/ü/ñ",
            // A trailing `/`, `/.` or `/..` names a directory, and stays so that a file there is refused.
            "a/.": "/a/", "a/b/": "/a/b/", "a/b/c/..": "/a/b/",
            String(repeating: "n", count: 255): "/" + String(repeating: "n", count: 255),
        ]
        for (raw, normal) in plain {
            #expect(try RequestTarget.parse("/v1/images/i/files/" + raw).path == normal, "\(raw)")
        }
        #expect(throws: RequestTarget.Failure.self) {
            try RequestTarget.parse("/v1/images/i/files/" + String(repeating: "n", count: 256))
        }
        #expect(throws: RequestTarget.Failure.self) {
            try RequestTarget.parse("/v1/images/i/files/" + Array(repeating: "d", count: 2100).joined(separator: "/"))
        }
        let refusals = [
            "/v1/images/i/files/..", "/v1/images/i/files/a/../..", "/v1/images/i/files/%00",
            "/v1/images/i/files/%g0", "/v1/images/i/files/%2", "/v1/images/i/files/%ff%fe",
            "/v1/images/%20/files/x",
        ]
        for uri in refusals {
            #expect(throws: RequestTarget.Failure.self, "\(uri)") { try RequestTarget.parse(uri) }
        }
        #expect(throws: RequestTarget.Failure.noRoute) { try RequestTarget.parse("/v1/images/i/blobs/x") }
        #expect(throws: RequestTarget.Failure.noRoute) { try RequestTarget.parse("/healthz") }
    }

    @Test("Range headers resolve as RFC 9110 §14 says")
    func ranges() {
        func resolve(_ header: String?, _ length: UInt64 = 10_000) -> ByteRangeRequest {
            ByteRangeRequest.resolve(header, length: length, maximumRanges: 4)
        }
        #expect(resolve(nil) == .whole)
        #expect(resolve("bytes=0-499") == .partial([0...499]))
        #expect(resolve("bytes=500-999") == .partial([500...999]))
        #expect(resolve("bytes=-500") == .partial([9500...9999]))
        #expect(resolve("bytes=9500-") == .partial([9500...9999]))
        #expect(resolve("bytes=0-0,-1") == .partial([0...0, 9999...9999]))
        #expect(resolve("bytes= 0-0 , ,-1") == .partial([0...0, 9999...9999]), "optional whitespace, empty elements")
        #expect(resolve("BYTES=0-9") == .partial([0...9]), "the unit is case-insensitive")
        #expect(resolve("bytes=9000-20000") == .partial([9000...9999]), "clamped to the end")
        #expect(resolve("bytes=10000-") == .unsatisfiable)
        #expect(resolve("bytes=-0") == .unsatisfiable)
        #expect(resolve("bytes=10000-,20000-30000") == .unsatisfiable)
        #expect(resolve("bytes=0-5", 0) == .unsatisfiable)
        #expect(resolve("bytes=10000-,5-6") == .partial([5...6]), "unsatisfiable elements are dropped")
        #expect(resolve("bytes=5-4") == .whole, "invalid: ignored")
        #expect(resolve("bytes=a-b") == .whole)
        #expect(resolve("bytes=1-2-3") == .whole)
        #expect(resolve("bytes=+1-2") == .whole)
        #expect(resolve("pages=1-2") == .whole)
        #expect(resolve("bytes=0-1,2-3,4-5,6-7,8-9") == .whole, "more than the cap")
        #expect(resolve("bytes=0-10,5-20") == .whole, "overlapping")
        #expect(resolve("bytes=0-9999,0-0") == .whole, "more bytes than the file")
        // Positions past UInt64 lie past any file (RFC 9110 sets no bound on the digits).
        #expect(resolve("bytes=99999999999999999999-") == .unsatisfiable, "a first position past the end")
        #expect(resolve("bytes=99999999999999999999-100000000000000000000") == .unsatisfiable)
        #expect(resolve("bytes=5-99999999999999999999999") == .partial([5...9999]), "a last position clamped")
        #expect(resolve("bytes=-99999999999999999999") == .partial([0...9999]), "a suffix longer than the file")
    }

    @Test("bytes compared with fixed text: equal, prefix, empty, shorter, longer")
    func byteComparison() {
        func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
        bytes(":path").withUnsafeBytes { name in
            #expect(name.isEqual(to: ":path") && !name.isEqual(to: ":pat") && !name.isEqual(to: ":paths"))
            #expect(name.hasPrefix(":pa") && name.hasPrefix("") && !name.hasPrefix(":paths") && !name.hasPrefix("x"))
        }
        [UInt8]().withUnsafeBytes { empty in
            #expect(empty.isEqual(to: "") && !empty.isEqual(to: "a") && empty.hasPrefix("") && !empty.hasPrefix("a"))
        }
        #expect("/v1/images/a".hasUTF8Prefix("/v1/images/") && !"/v1/image".hasUTF8Prefix("/v1/images/"))
        #expect(
            "caf\u{E9}/x".hasUTF8Prefix("caf\u{E9}") && !"cafe\u{301}".hasUTF8Prefix("caf\u{E9}"),
            "bytes, not characters")
    }

    @Test("SmallList keeps its elements in order, one inline, more in an array")
    func smallList() {
        var list = SmallList<Int>()
        #expect(list.isEmpty && list.count == 0)
        list.append(7)
        #expect(Array(list) == [7] && list[0] == 7)
        list.append(8)
        list.append(9)
        #expect(Array(list) == [7, 8, 9] && list.count == 3 && list[2] == 9)
        #expect(list == [7, 8, 9])
        #expect(list != [7, 8])
        #expect(([1] as SmallList<Int>) != [2])
        #expect(Array([1, 2] as SmallList<Int>) == [1, 2])
    }

    @Test("routes: parsed once from the target; a target that does not parse is kept, to be answered in turn")
    func routes() throws {
        #expect(Route.parse("/healthz") == .health && Route.parse("/readyz?x=1") == .ready)
        #expect(Route.parse("/metrics") == .metrics && Route.parse("/metrics").isOperations)
        #expect(Route.parse("/v1/admin") == .admin(.success([])))
        #expect(Route.parse("/v1/admin/images/a%2Fb/pages?x") == .admin(.success(["images", "a/b", "pages"])))
        let long = "/v1/admin/images/" + String(repeating: "0", count: 300)
        guard case .admin(.failure(.badRequest)) = Route.parse(long) else {
            Issue.record("an admin path that does not parse is the admin API's bad request")
            return
        }
        #expect(Route.parse("/v1/adminx") == .refused(.noRoute), "not the admin API")
        #expect(Route.parse("/healthz/x") == .refused(.noRoute) && Route.parse("/") == .refused(.noRoute))
        let data = Route.parse("/v1/images/i/stat/a/b")
        #expect(data == .data(try RequestTarget.parse("/v1/images/i/stat/a/b")) && data.endpoint == .stat)
        guard case .refused(.badRequest) = Route.parse("/v1/images/i/files/%zz") else {
            Issue.record("bad percent-encoding is a bad request")
            return
        }
        #expect(Route.parse("/v1/images/i/files/x").endpoint == .files && Route.parse("/x").endpoint == .other)
    }

    @Test("admin routes: a table of patterns; captures in order; 404 for no pattern, 405 with Allow for a method")
    func adminRoutes() throws {
        let router = AdminRouter.api
        #expect(
            try router.route(method: .DELETE, segments: ["images", "a b", "pages"], body: []).1.captures == ["a b"])
        #expect(try router.route(method: .PUT, segments: ["domains", "d", "quota"], body: [1]).1.body == [1])
        #expect(try router.route(method: .GET, segments: ["cache"], body: []).1.captures.isEmpty)
        do {
            _ = try router.route(method: .PATCH, segments: ["domains", "d", "quota"], body: [])
            Issue.record("PATCH routed")
        } catch {
            #expect(error.status == 405 && error.headers.first(name: "allow") == "PUT, DELETE")
        }
        for segments in [["images", "a", "b"], ["cache", "x"], [], ["Images"]] {
            #expect(throws: Problem.self, "\(segments)") {
                try router.route(method: .GET, segments: segments, body: [])
            }
        }
    }

    @Test("request fields: picked out in one pass, any case, the first value kept, repeats counted")
    func requestFields() {
        var fields = RequestFields()
        let list = [
            ("Host", "a"), ("RANGE", "bytes=0-1"), ("range", "bytes=2-3"), ("If-None-Match", "\"x\""),
            ("authorization", "Bearer 1"), ("Authorization", "Bearer 2"),
            ("X-Request-ID", String(repeating: "r", count: 80)),
            ("user-agent", "curl"), ("Transfer-Encoding", "chunked"), ("content-length", "5"),
            ("Expect", "100-continue"),
        ]
        for (name, value) in list { fields.add(name: name.utf8, value: value) }
        #expect(fields.hostCount == 1 && fields.range == "bytes=0-1" && fields.rangeCount == 2)
        #expect(fields.ifNoneMatch == "\"x\"" && fields.hasConditions && fields.ifMatch == nil)
        #expect(fields.authorization == "Bearer 1" && fields.authorizationCount == 2)
        #expect(fields.requestID?.utf8.count == 64 && fields.hasTransferEncoding && fields.contentLength == "5")
        #expect(fields.expect == "100-continue")
        #expect(!RequestFields().hasConditions)
    }

    @Test("header values written as bytes: decimal and hex numbers as String(_:radix:) writes them")
    func numbersAsBytes() {
        for value: UInt64 in [0, 1, 9, 10, 15, 16, 255, 4096, 0xb3d4_6668, 1 << 63, UInt64.max] {
            let text = String(unsafeUninitializedCapacity: 64) { memory in
                var writer = FieldValueWriter(UnsafeMutableRawBufferPointer(memory))
                writer.text("[")
                writer.decimal(value)
                writer.text("|")
                writer.hexadecimal(value)
                writer.hex([0x00, 0xAB, UInt8(truncatingIfNeeded: value)])
                return writer.count
            }
            #expect(
                text == "[\(value)|\(String(value, radix: 16))00ab\(Hex.string([UInt8(truncatingIfNeeded: value)]))")
        }
    }

    @Test("HTTP dates: IMF-fixdate out; IMF-fixdate, RFC 850 and asctime in")
    func dates() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        // Every weekday name (from Thursday 1 January 1970) and every month name (the 15th of each of 2024's).
        let weekdays = (0..<7).map { HTTPDate.format(Int64($0) * 86_400).prefix(3) }
        #expect(weekdays == ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"])
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let monthStarts: [Int64] = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335]
        for (month, start) in zip(months, monthStarts) {
            let seconds = 1_704_067_200 + (start + 14) * 86_400  // 2024-01-01 + days
            let text = HTTPDate.format(seconds)
            #expect(text.dropFirst(5) == "15 \(month) 2024 00:00:00 GMT", "\(text)")
            #expect(HTTPDate.parse(text) == seconds, "\(month) read back")
        }
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784_111_777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784_111_777)
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 PST") == nil)
        #expect(HTTPDate.parse("yesterday") == nil)
        #expect(HTTPDate.parse("Sun, 32 Nov 1994 08:49:37 GMT") == nil)
        for seconds: Int64 in [1, 86_399, 1_700_000_000, 4_102_444_800] {
            #expect(HTTPDate.parse(HTTPDate.format(seconds)) == seconds)
        }
    }

    @Test("conditional headers in RFC 9110 §13.2.2 order")
    func preconditions() {
        let validators = Validators(entityTag: "\"sha256-ab\"", lastModified: 1000)
        func evaluate(
            match: String? = nil, unmodified: String? = nil, noneMatch: String? = nil, modified: String? = nil,
            range: String? = nil, hasRange: Bool = false
        ) -> PreconditionOutcome {
            validators.evaluate(
                ifMatch: match, ifUnmodifiedSince: unmodified, ifNoneMatch: noneMatch, ifModifiedSince: modified,
                ifRange: range, hasRange: hasRange)
        }
        let later = HTTPDate.format(2000)
        let earlier = HTTPDate.format(500)
        #expect(evaluate() == .proceed(honourRange: true))
        #expect(evaluate(match: "\"x\"") == .failed)
        #expect(evaluate(match: "*") == .proceed(honourRange: true))
        #expect(evaluate(match: "W/\"sha256-ab\"") == .failed, "If-Match compares strongly")
        #expect(evaluate(unmodified: earlier) == .failed)
        #expect(evaluate(noneMatch: "W/\"sha256-ab\"") == .notModified, "If-None-Match compares weakly")
        #expect(evaluate(noneMatch: "\"x\"", modified: later) == .proceed(honourRange: true), "IMS ignored with INM")
        #expect(evaluate(modified: later) == .notModified)
        #expect(evaluate(modified: earlier) == .proceed(honourRange: true))
        #expect(evaluate(range: "\"sha256-ab\"", hasRange: true) == .proceed(honourRange: true))
        #expect(evaluate(range: "W/\"sha256-ab\"", hasRange: true) == .proceed(honourRange: false))
        #expect(evaluate(range: HTTPDate.format(1000), hasRange: true) == .proceed(honourRange: true))
        #expect(evaluate(range: later, hasRange: true) == .proceed(honourRange: false))
    }
}
