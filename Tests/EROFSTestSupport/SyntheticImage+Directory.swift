import EROFS
import Foundation
import Glibc

extension SyntheticImage {
    /// A tree read from a host directory (regular files, directories and symlinks; other types are skipped),
    /// every regular file compressed with `algorithm` one lcluster per pcluster. For benchmarking algorithms
    /// mkfs.erofs 1.5 cannot write; a real mkfs packs pclusters more tightly.
    public static func tree(fromDirectory path: String, compressing algorithm: CompressionAlgorithm) throws
        -> SyntheticImage
    {
        func node(_ path: String, name: String) throws -> Node? {
            var info = stat()
            guard lstat(path, &info) == 0 else { throw HostCallError(call: "lstat", path: path, errno: errno) }
            let result: Node
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                result = Node(name, .directory)
                for child in try FileManager.default.contentsOfDirectory(atPath: path).sorted() {
                    if let childNode = try node(path + "/" + child, name: child) { result.children.append(childNode) }
                }
            case S_IFREG:
                result = Node(name, .regular(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
                result.compression = algorithm
            case S_IFLNK:
                result = Node(name, .symlink(try FileManager.default.destinationOfSymbolicLink(atPath: path)))
            default:
                return nil
            }
            result.permissions = UInt16(info.st_mode & 0o7777)
            result.extended = true
            result.mtime = UInt64(max(info.st_mtim.tv_sec, 1_600_000_000))
            return result
        }
        guard let root = try node(path, name: "") else {
            throw HostCallError(call: "lstat", path: path, errno: ENOTDIR)
        }
        return SyntheticImage(root: root)
    }
}
