//! End-to-end tests: attack_list (placeholder, being written).
