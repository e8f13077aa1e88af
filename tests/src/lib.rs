//! Shared helpers for ember's integration tests.
