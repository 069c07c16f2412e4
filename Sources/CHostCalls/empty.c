// Intentionally empty: CHostCalls only wraps system headers.
