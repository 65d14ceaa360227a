//! go traces (not yet implemented).

use super::Draft;
use crate::text::Line;

/// Parses the first go trace in the lines.
pub(crate) fn parse(_lines: &[Line]) -> Option<Draft> {
    None
}
