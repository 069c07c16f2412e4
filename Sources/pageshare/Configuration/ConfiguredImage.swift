import PageShareServer

/// An entry of the configuration file's `images:`: the image record, and whether the daemon may start
/// without it (`required: true`: it may not; by default a missing or unusable image is listed as `failed`
/// and attached once it can be).
struct ConfiguredImage: Codable {
    var record: ImageRecord
    var required: Bool

    init(record: ImageRecord, required: Bool) {
        self.record = record
        self.required = required
    }

    private enum CodingKeys: String, CodingKey { case required }

    init(from decoder: any Decoder) throws {
        self.record = try ImageRecord(from: decoder)
        self.required =
            try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent(Bool.self, forKey: .required)
            ?? false
    }

    func encode(to encoder: any Encoder) throws {
        try self.record.encode(to: encoder)
        if self.required {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(true, forKey: .required)
        }
    }
}
