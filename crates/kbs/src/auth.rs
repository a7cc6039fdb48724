//! Callers: bearer tokens with roles, from the `--auth-file` (one `ROLE TOKEN` a line; ROLE
//! `administrator` or `releaser`; blank lines and `#` comments skipped). Tokens are compared in
//! constant time; the audit log names a caller by role and a digest prefix, never the token.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything: key management and release.
    Administrator,
    /// Release only.
    Releaser,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Releaser => "releaser",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// `role:` and the first 8 bytes of SHA-256 of the token, in hex.
    pub principal: String,
}

struct Entry {
    role: Role,
    token: Zeroizing<Vec<u8>>,
    principal: String,
}

/// The callers the broker knows.
pub struct AuthTable {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for AuthTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthTable({} tokens)", self.entries.len())
    }
}

/// Why the auth file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read the auth file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: want `ROLE TOKEN` with ROLE administrator or releaser")]
    Syntax { path: PathBuf, line: usize },
    #[error("{path} line {line}: a token shorter than 16 characters")]
    ShortToken { path: PathBuf, line: usize },
    #[error("{path} has no tokens")]
    Empty { path: PathBuf },
}

impl AuthTable {
    pub fn load(path: &Path) -> Result<AuthTable, AuthFileError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            AuthFileError::Read {
                path: path.to_owned(),
                source,
            }
        })?);
        AuthTable::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<AuthTable, AuthFileError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = || AuthFileError::Syntax {
                path: path.to_owned(),
                line: i + 1,
            };
            let mut words = line.split_whitespace();
            let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(syntax());
            };
            let role = match role {
                "administrator" => Role::Administrator,
                "releaser" => Role::Releaser,
                _ => return Err(syntax()),
            };
            if token.len() < 16 {
                return Err(AuthFileError::ShortToken {
                    path: path.to_owned(),
                    line: i + 1,
                });
            }
            let digest = Sha256::digest(token.as_bytes());
            entries.push(Entry {
                role,
                principal: format!("{}:{}", role.name(), hex::encode(&digest[..8])),
                token: Zeroizing::new(token.as_bytes().to_vec()),
            });
        }
        if entries.is_empty() {
            return Err(AuthFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(AuthTable { entries })
    }

    /// The caller a bearer token names, if any. Every entry is compared, in constant time.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.token.as_slice().ct_eq(token.as_bytes())) && found.is_none() {
                found = Some(Caller {
                    role: e.role,
                    principal: e.principal.clone(),
                });
            }
        }
        found
    }
}
