/// Describes a `DecodingError` the way an operator needs it: the key path and the reason, without Swift
/// type names (`images[2].domain: missing`).
public enum DecodingFailure {
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(Self.path(context.codingPath + [key])): missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(Self.path(context.codingPath)): \(Self.reason(context, fallback: "wrong type"))"
        case .dataCorrupted(let context):
            let path = Self.path(context.codingPath)
            return path == "document"
                ? Self.reason(context, fallback: "not valid")
                : "\(path): \(Self.reason(context, fallback: "invalid value"))"
        @unknown default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        guard !keys.isEmpty else { return "document" }
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text
    }

    private static func reason(_ context: DecodingError.Context, fallback: String) -> String {
        if let underlying = context.underlyingError { return "\(context.debugDescription) (\(underlying))" }
        return context.debugDescription.isEmpty ? fallback : context.debugDescription
    }
}
