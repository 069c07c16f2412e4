import EROFS
import Foundation

/// What `ls -l`, `stat` and their JSON show about one inode.
public struct FileDescription: Encodable, Sendable {
    public var path: String
    public var nid: UInt64
    public var type: String
    public var mode: String
    public var uid: UInt32
    public var gid: UInt32
    public var size: UInt64
    public var nlink: UInt32
    public var mtime: Int64
    public var mtimeNanoseconds: UInt32
    public var layout: String
    public var inodeFormat: String
    public var symlinkTarget: String?
    public var device: String?
    public var fingerprint: String?
    public var xattrs: [String: String]?
    public var extents: [ExtentDescription]?

    public struct ExtentDescription: Encodable, Sendable {
        public var offset: UInt64
        public var length: UInt64
        public var kind: String
    }

    /// Describes `inode` of `image`, found at `path`; reads the symlink target, and xattrs and extents when
    /// asked.
    public init(path: String, inode: Inode, image: Image, includeXattrs: Bool, includeExtents: Bool = false) throws {
        self.path = path
        self.nid = inode.nid
        self.type = inode.fileType.rawValue
        self.mode = "0" + String(inode.permissions, radix: 8)
        self.uid = inode.uid
        self.gid = inode.gid
        self.size = inode.size
        self.nlink = inode.linkCount
        self.mtime = inode.mtime
        self.mtimeNanoseconds = inode.mtimeNanoseconds
        self.layout = inode.layout.description
        self.inodeFormat = inode.isExtended ? "extended" : "compact"
        if inode.fileType == .symlink {
            self.symlinkTarget = String(decoding: try image.symlinkTarget(inode), as: UTF8.self)
        }
        if inode.fileType == .characterDevice || inode.fileType == .blockDevice {
            self.device = "\(inode.deviceMajor):\(inode.deviceMinor)"
        }
        self.fingerprint = inode.fingerprint.map { value in
            FingerprintValue.sha256Digest(value).map { "sha256:" + Hex.string($0) }
                ?? "base64:" + Data(value).base64EncodedString()
        }
        if includeExtents && inode.fileType != .characterDevice && inode.fileType != .blockDevice {
            self.extents = try image.extents(of: inode).map {
                ExtentDescription(offset: $0.logicalOffset, length: $0.length, kind: $0.kind.description)
            }
        }
        if includeXattrs {
            var xattrs: [String: String] = [:]
            for xattr in try image.xattrs(of: inode) {
                xattrs[xattr.nameString] = Data(xattr.value).base64EncodedString()
            }
            self.xattrs = xattrs
        }
    }

    /// `drwxr-xr-x`-style mode string.
    public static func modeString(_ inode: Inode) -> String {
        let typeCharacter: Character =
            switch inode.fileType {
            case .regular: "-"
            case .directory: "d"
            case .symlink: "l"
            case .characterDevice: "c"
            case .blockDevice: "b"
            case .fifo: "p"
            case .socket: "s"
            }
        var text = String(typeCharacter)
        let permissions = inode.permissions
        let letters: [Character] = ["r", "w", "x"]
        for shift in stride(from: 6, through: 0, by: -3) {
            for bit in 0..<3 {
                let set = (permissions >> UInt16(shift + 2 - bit)) & 1 == 1
                var character: Character = set ? letters[bit] : "-"
                if bit == 2 {
                    let special: UInt16 = shift == 6 ? 0o4000 : shift == 3 ? 0o2000 : 0o1000
                    if permissions & special != 0 {
                        let lower: Character = shift == 0 ? "t" : "s"
                        character = set ? lower : Character(lower.uppercased())
                    }
                }
                text.append(character)
            }
        }
        return text
    }

    /// One `ls -l` line.
    public static func longLine(name: String, inode: Inode, image: Image) throws -> String {
        let date = Date(timeIntervalSince1970: TimeInterval(inode.mtime))
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let sizeField =
            inode.fileType == .characterDevice || inode.fileType == .blockDevice
            ? "\(inode.deviceMajor),\(inode.deviceMinor)" : String(inode.size)
        var line =
            "\(Self.modeString(inode)) \(inode.linkCount) \(inode.uid) \(inode.gid) \(sizeField) "
            + "\(formatter.string(from: date)) \(name)"
        if inode.fileType == .symlink {
            line += " -> " + String(decoding: try image.symlinkTarget(inode), as: UTF8.self)
        }
        return line
    }
}

/// Lower-case hexadecimal text of bytes.
public enum Hex {
    /// `bytes` as lower-case hex, two digits a byte.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            var index = 0
            for byte in bytes {
                out[index] = Self.digit(byte >> 4)
                out[index + 1] = Self.digit(byte & 0xF)
                index += 2
            }
            return index
        }
    }

    /// The lower-case hex digit of `value` (0-15).
    static func digit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
