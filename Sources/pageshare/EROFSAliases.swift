import EROFS

/// swift-system also declares an `Inode`; in this module the name means the EROFS one.
typealias Inode = EROFS.Inode
