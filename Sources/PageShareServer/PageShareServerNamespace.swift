// The HTTP/1.1 + HTTP/2 server is built by a later issue (#5); the target exists so the dependency
// graph EROFS ← PageCache ← PageShareServer ← pageshare is in place. Nothing here claims to work yet.
import PageCache
