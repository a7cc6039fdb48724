//! One module per `coffer` command.

pub mod keygen;
pub mod sigstruct;
