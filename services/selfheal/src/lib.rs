//! The `selfheal` command as a library: every subcommand's logic, the in-process pipeline
//! (`selfheal up`) and the demo, so that tests drive them the way the binary does.
//!
//! `main.rs` only parses flags and dispatches to [`cmd`] and [`demo`].

pub mod cmd;
pub mod demo;
pub mod pipeline;
pub mod render;
pub mod topics_io;
