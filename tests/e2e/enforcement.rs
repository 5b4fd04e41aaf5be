//! End-to-end tests: enforcement (placeholder, being written).
