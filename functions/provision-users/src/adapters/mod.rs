//! The adapters behind `crate::ports`: one file per AWS client, plus the in-memory fakes the unit tests use.

pub mod identitystore;
#[cfg(test)]
pub mod memory;
pub mod sagemaker;
