//! Coffer's key broker: keys shaped like Azure Key Vault's, released only to attested enclaves
//! whose attestation tokens satisfy the key's release policy ([`policy`]).
#![forbid(unsafe_code)]

pub mod policy;
