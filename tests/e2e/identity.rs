//! End-to-end tests: identity (placeholder, being written).
