//! Reusable parts of the screen.

pub mod shell;
