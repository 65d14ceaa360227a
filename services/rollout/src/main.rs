//! rollout: approval, canary deployment, promotion or rollback

fn main() {}
