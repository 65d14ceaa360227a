//! The selfheal command: demo, up, replay, record, tail, approve, knowledge
