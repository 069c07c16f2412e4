// Intentionally empty: CXXHash only re-exports the system header.
