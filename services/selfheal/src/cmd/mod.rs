//! The subcommands of `selfheal`, one module each; `main.rs` only dispatches.

pub mod approve;
pub mod explain;
pub mod knowledge;
pub mod logs;
pub mod record;
pub mod tail;
pub mod trace;
pub mod up;
