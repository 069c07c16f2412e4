import Foundation

/// The JSON of every response body the data plane writes: keys sorted, slashes unescaped.
enum JSONBody {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }
}
