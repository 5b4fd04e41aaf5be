//! End-to-end tests: evasion (being written).
