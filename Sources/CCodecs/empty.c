// Intentionally empty: CCodecs only re-exports the system headers.
