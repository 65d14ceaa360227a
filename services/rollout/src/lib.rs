//! rollout: approval, canary deployment, promotion or rollback
