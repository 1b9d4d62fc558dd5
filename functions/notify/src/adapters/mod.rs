//! Adapters: one SDK client each, behind the ports of `crate::ports`.

pub mod sagemaker;
pub mod sns;

pub use sagemaker::SageMakerRegistry;
pub use sns::SnsAlertPublisher;
