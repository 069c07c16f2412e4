import Glibc
import NIOCore
import NIOHTTP1

/// A response's status and header fields, kept as HTTP/1.1 field lines (`name: value\r\n`) in one buffer,
/// with room before them for the status line. The HTTP/1.1 writer completes the head in place and writes
/// the buffer as it is; the HTTP/2 writer points its header list into the same bytes. One allocation per
/// response head, and no `String` per field.
///
/// Field names are lowercase. Every value is made by the server from safe parts (numbers, dates, hex,
/// fixed text, percent-encoded paths) — never a request's or an image's text — so nothing here checks for
/// CR or LF.
struct ResponseHead {
    var status: HTTPResponseStatus
    /// The status line's room (see ``statusLineRoom``), then the field lines.
    private var lines: ByteBuffer
    /// Whether a `connection` field was added (HTTP/1.1 adds `connection: close` on shutdown otherwise).
    private(set) var hasConnectionField = false
    /// How many field lines were added.
    private(set) var fieldCount = 0

    /// Room reserved for `HTTP/1.1 NNN Reason\r\n`: the longest reason phrase NIO knows is 31 bytes.
    private static let statusLineRoom = 64

    init(status: HTTPResponseStatus, allocator: ByteBufferAllocator, capacity: Int = 256) {
        self.status = status
        self.lines = allocator.buffer(capacity: Self.statusLineRoom + capacity)
        self.lines.moveWriterIndex(forwardBy: Self.statusLineRoom)
        self.lines.moveReaderIndex(forwardBy: Self.statusLineRoom)
    }

    /// Adds `name: value`.
    mutating func add(_ name: StaticString, _ value: String) {
        var value = value
        value.withUTF8 { bytes in
            self.add(name, maximumBytes: bytes.count) { $0.bytes(UnsafeRawBufferPointer(bytes)) }
        }
    }

    /// Adds `name: value` for a name known only at run time (a ``Problem``'s own fields).
    mutating func add(name: String, value: String) {
        if name == "connection" { self.hasConnectionField = true }
        self.fieldCount += 1
        self.lines.writeString(name)
        self.lines.writeStaticString(": ")
        self.lines.writeString(value)
        self.lines.writeStaticString("\r\n")
    }

    /// Makes this the head of `problem`'s problem+json answer: its status, its own fields (`Allow`,
    /// `WWW-Authenticate`, …) and the content type.
    mutating func answer(_ problem: Problem) {
        self.status = problem.responseStatus
        for (name, value) in problem.headers { self.add(name: name, value: value) }
        self.add("content-type", "application/problem+json")
    }

    /// Adds `name: value` with `value` in decimal.
    mutating func add(_ name: StaticString, decimal value: UInt64) {
        self.add(name, maximumBytes: 20) { $0.decimal(value) }
    }

    /// Adds a field whose value `writeValue` writes, at most `maximumBytes` of it, straight into the head's
    /// buffer: room for the whole line is made once, then filled without further checks of the buffer.
    mutating func add(_ name: StaticString, maximumBytes: Int, _ writeValue: (inout FieldValueWriter) -> Void) {
        if Self.isConnection(name) { self.hasConnectionField = true }
        self.fieldCount += 1
        let nameCount = name.utf8CodeUnitCount
        self.lines.writeWithUnsafeMutableBytes(minimumWritableBytes: nameCount + 4 + maximumBytes) { memory in
            var line = FieldValueWriter(memory)
            line.text(name)
            line.text(": ")
            var value = FieldValueWriter(UnsafeMutableRawBufferPointer(rebasing: memory[line.count...]))
            writeValue(&value)
            line.count += value.count
            line.text("\r\n")
            return line.count
        }
    }

    private static func isConnection(_ name: StaticString) -> Bool {
        name.withUTF8Buffer { UnsafeRawBufferPointer($0).isEqual(to: "connection") }
    }

    /// Calls `body` with the field lines' bytes (`name: value\r\n` each), valid during the call.
    func withFieldLines<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        self.lines.withUnsafeReadableBytes(body)
    }

    /// Calls `body` with each field's name and value in `lines` (from ``withFieldLines(_:)``), in order.
    static func forEachField(
        in lines: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void
    ) {
        guard let base = lines.baseAddress else { return }
        // memchr: the lines were written here, so every one has its `: ` and its CR.
        func find(_ byte: UInt8, from start: Int) -> Int {
            UnsafeRawPointer(memchr(base + start, Int32(byte), lines.count - start)!) - base
        }
        var start = 0
        while start < lines.count {
            let colon = find(UInt8(ascii: ":"), from: start)
            let end = find(UInt8(ascii: "\r"), from: colon + 2)
            body(
                UnsafeRawBufferPointer(rebasing: lines[start..<colon]),
                UnsafeRawBufferPointer(rebasing: lines[(colon + 2)..<end]))
            start = end + 2
        }
    }

    /// The fields as strings, in order (for tests and logs).
    var fields: [(name: String, value: String)] {
        var fields: [(String, String)] = []
        self.withFieldLines { lines in
            Self.forEachField(in: lines) { name, value in
                fields.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
        }
        return fields
    }

    /// The head as HTTP/1.1 bytes: the status line (for a request of HTTP/1.`minorVersion`), the fields,
    /// `connection: close` if `closing` and no connection field was given, the blank line. Consumes the
    /// head's buffer: written in place, no copy.
    consuming func http1Bytes(minorVersion: Int, closing: Bool) -> ByteBuffer {
        var bytes = self.lines
        if closing && !self.hasConnectionField { bytes.writeStaticString("connection: close\r\n") }
        bytes.writeStaticString("\r\n")
        let code = self.status.code
        var reason = self.status.reasonPhrase
        if 13 + reason.utf8.count + 2 > Self.statusLineRoom { reason = "" }  // a reason phrase may be empty
        let length = 13 + reason.utf8.count + 2
        var at = bytes.readerIndex - length
        at += bytes.setStaticString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", at: at)
        at += bytes.setInteger(UInt8(ascii: "0") + UInt8(code / 100 % 10), at: at)
        at += bytes.setInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10), at: at)
        at += bytes.setInteger(UInt8(ascii: "0") + UInt8(code % 10), at: at)
        at += bytes.setInteger(UInt8(ascii: " "), at: at)
        at += bytes.setString(reason, at: at)
        at += bytes.setStaticString("\r\n", at: at)
        bytes.moveReaderIndex(to: bytes.readerIndex - length)
        return bytes
    }
}

/// Writes a field value into memory the head made room for. Writing past that room is a programming error
/// (every value has a known longest form), caught by a precondition.
struct FieldValueWriter {
    private let memory: UnsafeMutableRawBufferPointer
    /// Bytes written.
    fileprivate(set) var count = 0

    init(_ memory: UnsafeMutableRawBufferPointer) { self.memory = memory }

    private mutating func room(_ bytes: Int) -> UnsafeMutableRawBufferPointer {
        precondition(self.count + bytes <= self.memory.count, "a field value longer than its room")
        defer { self.count += bytes }
        return UnsafeMutableRawBufferPointer(rebasing: self.memory[self.count..<(self.count + bytes)])
    }

    mutating func bytes(_ bytes: UnsafeRawBufferPointer) {
        self.room(bytes.count).copyMemory(from: bytes)
    }

    mutating func text(_ text: StaticString) {
        text.withUTF8Buffer { self.bytes(UnsafeRawBufferPointer($0)) }
    }

    /// `value` in decimal.
    mutating func decimal(_ value: UInt64) {
        // `% 10` by a constant compiles to a multiplication, where a variable radix costs a division a digit.
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        let out = self.room(digits)
        rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            out[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
    }

    /// `value` in lower-case hex, no leading zeros.
    mutating func hexadecimal(_ value: UInt64) {
        let digits = max(1, (64 - value.leadingZeroBitCount + 3) / 4)
        let out = self.room(digits)
        for index in 0..<digits {
            out[index] = Hex.digit(UInt8(truncatingIfNeeded: value >> ((digits - 1 - index) * 4)) & 0xF)
        }
    }

    /// `bytes` in lower-case hex, two digits a byte.
    mutating func hex(_ bytes: some Collection<UInt8>) {
        let out = self.room(bytes.count * 2)
        var index = 0
        for byte in bytes {
            out[index] = Hex.digit(byte >> 4)
            out[index + 1] = Hex.digit(byte & 0xF)
            index += 2
        }
    }

    /// `seconds` since the epoch as an IMF-fixdate (``HTTPDate/format(_:)``).
    mutating func date(_ seconds: Int64) {
        let out = self.room(HTTPDate.length)
        _ = HTTPDate.fill(seconds, into: out.bindMemory(to: UInt8.self))
    }
}
