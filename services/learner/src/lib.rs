//! learner: the RocksDB learning store and its query API
