//! One module per `coffer` command.

pub mod build;
pub mod inspect;
pub mod kbs;
pub mod keygen;
pub mod measure;
pub mod platform;
pub mod quote;
pub mod sign;
pub mod sigstruct;
