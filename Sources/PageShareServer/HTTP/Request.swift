import NIOHTTP1

/// A request's head as the responder reads it, whichever protocol brought it: the method, the target and
/// the few fields a response depends on, picked out in one pass as the head arrives (no field list kept).
struct Request {
    var method: HTTPMethod
    /// The request target as sent (origin form: path and query).
    var target: String
    var version: HTTPVersion
    /// Whether the connection stays open after the response: HTTP/2 always (its streams end, not the
    /// connection), HTTP/1.1 unless the request said `Connection: close` (or was HTTP/1.0 without keep-alive).
    var keepAlive: Bool
    var fields: RequestFields

    /// Whether the method is GET. Matched by case: `HTTPMethod`'s `==` compares the methods' names.
    var isGet: Bool { if case .GET = self.method { true } else { false } }
    /// Whether the method is HEAD (matched by case, as ``isGet``).
    var isHead: Bool { if case .HEAD = self.method { true } else { false } }

    /// An HTTP/2 request: its pseudo-fields and the fields picked out of its header list.
    init(method: HTTPMethod, target: String, fields: consuming RequestFields) {
        self.method = method
        self.target = target
        self.version = .http2
        self.keepAlive = true
        self.fields = fields
    }

    /// An HTTP/1.x request from NIO's decoder (its target in origin form already).
    init(_ head: HTTPRequestHead) {
        self.method = head.method
        self.target = head.uri
        self.version = head.version
        self.keepAlive = head.isKeepAlive
        self.fields = RequestFields()
        for (name, value) in head.headers { self.fields.add(name: name.utf8, value: value) }
    }
}

/// The request fields the server reads. The first value of each counts; fields that must not be repeated
/// (Host, Authorization, Range) are counted so that a repeat is refused rather than the first one believed.
struct RequestFields {
    var hostCount = 0
    var authorization: String?
    var authorizationCount = 0
    /// `x-request-id`, cut to 64 bytes: it is logged.
    var requestID: String?
    var range: String?
    var rangeCount = 0
    var ifMatch: String?
    var ifUnmodifiedSince: String?
    var ifNoneMatch: String?
    var ifModifiedSince: String?
    var ifRange: String?
    var expect: String?
    var contentLength: String?
    var hasTransferEncoding = false

    /// Whether any conditional field is present (a file's validators are compared only then).
    var hasConditions: Bool {
        self.ifMatch != nil || self.ifUnmodifiedSince != nil || self.ifNoneMatch != nil
            || self.ifModifiedSince != nil || self.ifRange != nil
    }

    /// Takes the field `name` (any case) if it is one the server reads; `value` is made only then.
    mutating func add(name: some Collection<UInt8>, value: @autoclosure () -> String) {
        // The length first: most fields are told apart by it before a byte is compared.
        switch name.count {
        case 4 where Self.same(name, "host"): self.hostCount += 1
        case 5 where Self.same(name, "range"):
            self.rangeCount += 1
            if self.range == nil { self.range = value() }
        case 6 where Self.same(name, "expect"): if self.expect == nil { self.expect = value() }
        case 8 where Self.same(name, "if-match"): if self.ifMatch == nil { self.ifMatch = value() }
        case 8 where Self.same(name, "if-range"): if self.ifRange == nil { self.ifRange = value() }
        case 12 where Self.same(name, "x-request-id"):
            if self.requestID == nil { self.requestID = String(value().prefix(64)) }
        case 13 where Self.same(name, "authorization"):
            self.authorizationCount += 1
            if self.authorization == nil { self.authorization = value() }
        case 13 where Self.same(name, "if-none-match"): if self.ifNoneMatch == nil { self.ifNoneMatch = value() }
        case 14 where Self.same(name, "content-length"):
            if self.contentLength == nil { self.contentLength = value() }
        case 17 where Self.same(name, "if-modified-since"):
            if self.ifModifiedSince == nil { self.ifModifiedSince = value() }
        case 17 where Self.same(name, "transfer-encoding"): self.hasTransferEncoding = true
        case 19 where Self.same(name, "if-unmodified-since"):
            if self.ifUnmodifiedSince == nil { self.ifUnmodifiedSince = value() }
        default: break
        }
    }

    /// ASCII case-insensitive equality with a lowercase `field` name.
    private static func same(_ name: some Collection<UInt8>, _ field: StaticString) -> Bool {
        field.withUTF8Buffer { expected in
            name.elementsEqual(expected) { byte, lower in
                (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte) == lower
            }
        }
    }
}
