//! The ports' implementations: one file per AWS client, and the in-memory fakes beside them.

pub mod dynamodb;
#[cfg(test)]
pub(crate) mod memory;
pub mod sagemaker;
pub mod sqs;
