// The shared dedup page cache is built by a later issue (#4); the target exists so the dependency
// graph EROFS ← PageCache ← PageShareServer ← pageshare is in place. Nothing here claims to work yet.
import EROFS
