//! Browser test harness.
