//! Shared helpers for OptiFork benchmarks.
