//! verifier: confirms the incident stopped and writes the outcome
