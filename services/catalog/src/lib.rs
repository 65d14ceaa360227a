//! The service catalog: where each service's code lives and how it may be healed
