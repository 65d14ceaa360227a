//! rust traces (not yet implemented).

use super::Draft;
use crate::text::Line;

/// Parses the first rust trace in the lines.
pub(crate) fn parse(_lines: &[Line]) -> Option<Draft> {
    None
}
