//! Epicenter front end.
