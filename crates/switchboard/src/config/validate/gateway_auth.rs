//! The `[gateway.auth]` table: API keys (as SHA-256 hashes), JWT verification
//! (`[gateway.auth.jwt]`), and which verified claims become session variables.

use std::path::Path;

use crate::config::checks::{UrlWording, check_http_url, parse_duration};
use crate::config::diagnostics::Ctx;
use crate::config::gateway_security::{
    DEFAULT_JWKS_CACHE, InboundAuthConfig, JwksSource, JwtConfig, KeyHash,
};
use crate::config::raw::{RawGatewayAuth, RawGatewayJwt};
use crate::config::validate::gateway::is_variable_name;
use crate::error::ConfigError;

/// How to write an API key's hash.
const KEY_HASH_FIX: &str = "store the key's SHA-256 in hex, never the key: `printf %s \"$KEY\" | \
     sha256sum` prints it; e.g. api_keys = { ci = \"9f86d0…\" } (64 hex digits)";

/// `[gateway.auth]`. `header_variables` are the variables `session_headers` already set: a
/// claim cannot set one too (a header could then stand in for a verified claim).
pub(super) fn validate_gateway_auth(
    ctx: &Ctx<'_>,
    raw: RawGatewayAuth,
    header_variables: &[&str],
) -> Result<InboundAuthConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| {
        ctx.error_at(&["gateway", "auth", key], problem, fix)
    };
    let mut auth = InboundAuthConfig::default();
    if let Some(resource) = raw.resource {
        let wording = UrlWording {
            subject: "'resource'",
            example: "resource = \"https://mcp.example.com/mcp\"",
        };
        check_http_url(&resource, &wording)
            .map_err(|(problem, fix)| err("resource", problem, fix))?;
        auth.resource = Some(resource);
    }
    for (name, hash) in raw.api_keys.unwrap_or_default() {
        let digest = parse_sha256(&hash).ok_or_else(|| {
            err(
                "api_keys",
                format!("the API key '{name}' is not a SHA-256 hash in hex"),
                KEY_HASH_FIX.to_string(),
            )
        })?;
        auth.api_keys.insert(name, KeyHash(digest));
    }
    for (claim, variable) in raw.claims.unwrap_or_default() {
        if !is_variable_name(&variable) {
            return Err(err(
                "claims",
                format!("the claim '{claim}' maps to {variable:?}, which is not a variable name"),
                "variable names are letters, digits and '_', not starting with a digit, e.g. \
                 claims = { sub = \"user\" }"
                    .to_string(),
            ));
        }
        if header_variables.contains(&variable.as_str()) {
            return Err(err(
                "claims",
                format!("the variable '{variable}' is set both by a claim and by session_headers"),
                "a header must not stand in for a verified claim: give the claim's variable a \
                 name of its own"
                    .to_string(),
            ));
        }
        auth.claims.insert(claim, variable);
    }
    if let Some(jwt) = raw.jwt {
        auth.jwt = Some(validate_jwt(ctx, jwt)?);
    }
    if auth.api_keys.is_empty() && auth.jwt.is_none() {
        return Err(err(
            "api_keys",
            "[gateway.auth] accepts no credential: it has neither api_keys nor a jwt table"
                .to_string(),
            "add api_keys = { NAME = \"SHA-256 hex\" } and/or a [gateway.auth.jwt] table with \
             jwks_url (or jwks_file), issuer and audience"
                .to_string(),
        ));
    }
    Ok(auth)
}

/// `[gateway.auth.jwt]`.
fn validate_jwt(ctx: &Ctx<'_>, raw: RawGatewayJwt) -> Result<JwtConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| {
        ctx.error_at(&["gateway", "auth", "jwt", key], problem, fix)
    };
    let jwks = match (raw.jwks_file, raw.jwks_url) {
        (Some(_), Some(_)) => {
            return Err(err(
                "jwks_url",
                "both 'jwks_file' and 'jwks_url' are set".to_string(),
                "keep one: jwks_url for the identity provider's key set, jwks_file for a \
                 local copy"
                    .to_string(),
            ));
        }
        (None, None) => {
            return Err(err(
                "jwks_url",
                "[gateway.auth.jwt] has no signing keys: neither 'jwks_url' nor 'jwks_file' \
                 is set"
                    .to_string(),
                "add jwks_url = \"https://idp.example.com/.well-known/jwks.json\" (or \
                 jwks_file = \"PATH\")"
                    .to_string(),
            ));
        }
        (Some(file), None) => {
            let path = Path::new(&file);
            JwksSource::File(match ctx.file.and_then(Path::parent) {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path.to_path_buf(),
            })
        }
        (None, Some(url)) => {
            let wording = UrlWording {
                subject: "'jwks_url'",
                example: "jwks_url = \"https://idp.example.com/.well-known/jwks.json\"",
            };
            check_http_url(&url, &wording)
                .map_err(|(problem, fix)| err("jwks_url", problem, fix))?;
            JwksSource::Url(url)
        }
    };
    let required = |key: &str, value: Option<String>, example: &str| {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            err(
                key,
                format!("[gateway.auth.jwt] needs '{key}'"),
                format!("add {key} = \"{example}\""),
            )
        })
    };
    let issuer = required("issuer", raw.issuer, "https://idp.example.com")?;
    let audience = required("audience", raw.audience, "https://mcp.example.com/mcp")?;
    let jwks_cache = match raw.jwks_cache {
        Some(value) => parse_duration("jwks_cache", &value)
            .map_err(|(problem, fix)| err("jwks_cache", problem, fix))?,
        None => DEFAULT_JWKS_CACHE,
    };
    let authorization_servers = raw
        .authorization_servers
        .unwrap_or_else(|| vec![issuer.clone()]);
    for server in &authorization_servers {
        let wording = UrlWording {
            subject: "an authorization server",
            example: "authorization_servers = [\"https://idp.example.com\"]",
        };
        check_http_url(server, &wording)
            .map_err(|(problem, fix)| err("authorization_servers", problem, fix))?;
    }
    Ok(JwtConfig {
        jwks,
        issuer,
        audience,
        required_scopes: raw.required_scopes.unwrap_or_default(),
        jwks_cache,
        authorization_servers,
    })
}

/// 64 hex digits (either case) as 32 bytes.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim().as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests;
