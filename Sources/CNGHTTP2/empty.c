// Intentionally empty: CNGHTTP2 only re-exports the system header.
