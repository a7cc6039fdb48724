//! One module per `coffer` command.

pub mod attest;
pub mod build;
pub mod ca;
pub mod inspect;
pub mod kbs;
pub mod keygen;
pub mod measure;
pub mod platform;
pub mod provision;
pub mod quote;
pub mod sign;
pub mod sigstruct;
