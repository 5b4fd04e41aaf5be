//! End-to-end tests: admin (placeholder, being written).
