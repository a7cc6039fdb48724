//! A client of the broker's key API, for `coffer kbs key …`.

use serde_json::{Value, json};

use crate::b64url;
use crate::policy::{PolicyError, ReleasePolicy};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the key broker")]
    Http(#[from] reqwest::Error),
    #[error("the key broker answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("the release policy is refused")]
    Policy(#[from] PolicyError),
    #[error("cannot use the CA certificate {path}")]
    CaCert {
        path: std::path::PathBuf,
        #[source]
        source: CaCertError,
    },
}

/// Why a `--ca-cert` file is not usable.
#[derive(Debug, thiserror::Error)]
pub enum CaCertError {
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    #[error("it is not a PEM certificate")]
    Pem(#[source] reqwest::Error),
    #[error("cannot build the HTTPS client")]
    Client(#[source] reqwest::Error),
}

/// A key broker and the bearer token to call it with.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

/// What `create` makes.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// `oct` or `RSA` (or the `-HSM` names).
    pub kty: String,
    pub size: Option<u32>,
    /// The release policy document (JSON); the key is exportable when there is one.
    pub policy: Option<Vec<u8>>,
    pub immutable: bool,
    /// Raw key material to import (oct keys) instead of generating it.
    pub import: Option<Vec<u8>>,
}

fn policy_json(doc: &[u8], immutable: bool) -> Result<Value, PolicyError> {
    ReleasePolicy::parse(doc)?;
    Ok(
        json!({"contentType": "application/json; charset=utf-8", "data": b64url(doc), "immutable": immutable}),
    )
}

impl Client {
    /// A client trusting the system's roots, plus `ca_cert` (a PEM file) when given.
    pub fn new(
        url: &str,
        token: &str,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Client, ClientError> {
        crate::install_crypto_provider();
        let mut builder = reqwest::Client::builder();
        if let Some(path) = ca_cert {
            let fail = |source| ClientError::CaCert {
                path: path.to_owned(),
                source,
            };
            let pem = std::fs::read(path).map_err(|e| fail(CaCertError::Read(e)))?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|e| fail(CaCertError::Pem(e)))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| ClientError::CaCert {
            path: ca_cert.map(std::path::Path::to_owned).unwrap_or_default(),
            source: CaCertError::Client(e),
        })?;
        Ok(Client {
            http,
            url: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}?api-version=7.4", self.url))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        Ok(value)
    }

    /// Creates (or imports) a new version of key `name`.
    pub async fn create(&self, name: &str, spec: &KeySpec) -> Result<Value, ClientError> {
        let policy = spec
            .policy
            .as_deref()
            .map(|p| policy_json(p, spec.immutable))
            .transpose()?;
        let attributes = json!({"exportable": policy.is_some(), "enabled": true});
        match &spec.import {
            Some(material) => {
                let mut body = json!({"key": {"kty": spec.kty, "k": b64url(material)}, "attributes": attributes});
                if let Some(p) = policy {
                    body["release_policy"] = p;
                }
                self.call(reqwest::Method::PUT, &format!("/keys/{name}"), Some(body))
                    .await
            }
            None => {
                let mut body = json!({"kty": spec.kty, "attributes": attributes});
                if let Some(size) = spec.size {
                    body["key_size"] = json!(size);
                }
                if let Some(p) = policy {
                    body["release_policy"] = p;
                }
                self.call(
                    reqwest::Method::POST,
                    &format!("/keys/{name}/create"),
                    Some(body),
                )
                .await
            }
        }
    }

    pub async fn show(&self, name: &str, version: Option<i64>) -> Result<Value, ClientError> {
        let path = match version {
            Some(v) => format!("/keys/{name}/{v}"),
            None => format!("/keys/{name}"),
        };
        self.call(reqwest::Method::GET, &path, None).await
    }

    pub async fn list(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/keys", None).await
    }

    pub async fn list_deleted(&self) -> Result<Value, ClientError> {
        self.call(reqwest::Method::GET, "/deletedkeys", None).await
    }

    pub async fn delete(&self, name: &str) -> Result<Value, ClientError> {
        self.call(reqwest::Method::DELETE, &format!("/keys/{name}"), None)
            .await
    }

    pub async fn recover(&self, name: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::POST,
            &format!("/deletedkeys/{name}/recover"),
            None,
        )
        .await
    }

    pub async fn purge(&self, name: &str) -> Result<Value, ClientError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/deletedkeys/{name}"),
            None,
        )
        .await
    }

    /// Replaces the release policy of a version (the latest when `None`).
    pub async fn set_policy(
        &self,
        name: &str,
        version: Option<i64>,
        policy: &[u8],
        immutable: bool,
    ) -> Result<Value, ClientError> {
        let version = match version {
            Some(v) => v,
            None => {
                let latest = self.show(name, None).await?;
                latest["key"]["kid"]
                    .as_str()
                    .and_then(|kid| kid.rsplit('/').next())
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ClientError::Refused {
                        status: 200,
                        message: "the answer has no kid".to_owned(),
                    })?
            }
        };
        let body = json!({"release_policy": policy_json(policy, immutable)?});
        self.call(
            reqwest::Method::PATCH,
            &format!("/keys/{name}/{version}"),
            Some(body),
        )
        .await
    }
}
