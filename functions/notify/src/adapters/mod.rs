//! Adapters: one SDK client each, behind the ports of `crate::ports`, and `memory`, the in-memory fakes of the
//! same ports.

pub mod memory;
pub mod sagemaker;
pub mod sns;

pub use sagemaker::SageMakerRegistry;
pub use sns::SnsAlertPublisher;
