//! End-to-end tests: records (placeholder, being written).
