//! Streaming Drain-class log template mining
