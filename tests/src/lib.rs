//! The local AWS world of studio-ops: moto, the Studio/CodeCommit simulator, a loopback Lambda Runtime API that
//! hosts the function binaries, and EventBridge routing with the template's own patterns.

pub mod bench;
pub mod dashboard;
pub mod demo;
pub mod git;
pub mod iam;
pub mod mlflow;
pub mod moto;
pub mod runtime_api;
pub mod sim;
pub mod sweep_state;
pub mod template;
pub mod world;
