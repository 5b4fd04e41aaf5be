//! End-to-end tests: config (placeholder, being written).
