//! Transaction pool (skeleton; being written).
