//! Stack trace parsing, fingerprinting and repository mapping for seven runtimes
