//! `switchboard auth login|status|logout`: OAuth sign-ins kept in the token store (the
//! user's state directory; `SWITCHBOARD_STATE_DIR` overrides).
//!
//! - `login SERVER` forgets the server's stored tokens, connects with the browser flow
//!   allowed (the server's 401 starts it; the URL goes to `$SWITCHBOARD_BROWSER`, else
//!   `$BROWSER`, else the desktop's opener, and is printed on stderr) and lists its tools,
//!   then says who signed in where and until when.
//! - `status` reads the store only (no network): per OAuth server, whether tokens are
//!   stored, the issuer, scopes, when the access token expires and whether it can be
//!   refreshed. Never a token.
//! - `logout SERVER` deletes the stored tokens and revokes them at the authorization server
//!   when it offers revocation (RFC 7009; best effort: the output says what happened).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use switchboard::auth::{FileStore, Revocation, TokenKey, TokenRecord, TokenStore, sign_out};
use switchboard::config::{AuthKind, SHARED_PRINCIPAL, SessionMode};
use switchboard::{ServerConfig, TransportKind};

use crate::SourceArgs;
use crate::output::{JsonStyle, print_error, print_json};
use crate::progress::Style;
use crate::source::{EXIT_BAD_INPUT, Source};

#[derive(Subcommand)]
pub enum AuthCommand {
    /// Sign in to a server in the browser and keep its tokens.
    Login {
        /// The server's name in the config (optional with --url or a one-server config).
        server: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Who is signed in where, and until when (never a token).
    Status {
        #[command(flatten)]
        source: SourceArgs,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Forget a server's stored tokens.
    Logout {
        server: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// One server's sign-in as `status` shows it.
#[derive(Serialize)]
struct Row {
    server: String,
    principal: String,
    signed_in: bool,
    issuer: Option<String>,
    scopes: Vec<String>,
    /// Seconds until the access token expires (negative: expired), when known.
    expires_in_s: Option<i64>,
    refreshable: bool,
}

pub async fn run(command: AuthCommand, style: JsonStyle) -> u8 {
    let Some(store) = FileStore::default_location() else {
        eprintln!("error: no state directory for tokens: set SWITCHBOARD_STATE_DIR or HOME");
        return EXIT_BAD_INPUT;
    };
    match command {
        AuthCommand::Login { server, source } => login(&store, server.as_deref(), &source).await,
        AuthCommand::Status { source, format } => status(&store, &source, format, style).await,
        AuthCommand::Logout { server, source } => {
            let Ok((_, server)) = one_server(&source, server.as_deref()) else {
                return EXIT_BAD_INPUT;
            };
            match sign_out(&store, &key_of(&server)).await {
                Ok(done) => {
                    let said = match (&done.had_tokens, &done.revocation) {
                        (false, _) => "no tokens were stored".to_string(),
                        (true, Revocation::Revoked) => {
                            "its stored tokens are deleted and revoked at the authorization \
                             server"
                                .to_string()
                        }
                        (true, Revocation::Failed(why)) => format!(
                            "its stored tokens are deleted; revoking them at the authorization \
                             server failed: {why}"
                        ),
                        (true, _) => "its stored tokens are deleted; the authorization server \
                                      offers no revocation, so they stay valid there until they \
                                      expire"
                            .to_string(),
                    };
                    eprintln!("signed out of {} ({said})", server.name);
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    1
                }
            }
        }
    }
}

async fn login(store: &FileStore, name: Option<&str>, args: &SourceArgs) -> u8 {
    let Ok((source, server)) = one_server(args, name) else {
        return EXIT_BAD_INPUT;
    };
    let key = key_of(&server);
    if let Err(e) = store.remove(&key).await {
        eprintln!("error: {e}");
        return 1;
    }
    let hub = match source.connect(Style::Transient, true).await {
        Ok(hub) => hub,
        Err(code) => return code,
    };
    let failed = hub.failures().iter().find(|(s, _)| *s == server.name);
    let code = if let Some((_, error)) = failed {
        print_error(error);
        1
    } else {
        match store.load(&key).await {
            Ok(Some(record)) => {
                let row = row_of(&server, Some(&record));
                eprintln!(
                    "signed in to {} at {}{}{}",
                    server.name,
                    row.issuer.as_deref().unwrap_or("its authorization server"),
                    scopes_text(&row.scopes),
                    expiry_text(row.expires_in_s)
                );
                0
            }
            Ok(None) => {
                eprintln!(
                    "{} did not ask for a sign-in: nothing to store",
                    server.name
                );
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                1
            }
        }
    };
    hub.close().await;
    code
}

async fn status(store: &FileStore, args: &SourceArgs, format: Format, style: JsonStyle) -> u8 {
    let source = match Source::load(args) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let mut rows = Vec::new();
    for server in source.servers().into_iter().filter(signs_in) {
        match store.load(&key_of(&server)).await {
            Ok(record) => rows.push(row_of(&server, record.as_ref())),
            Err(e) => eprintln!("error: {}: {e}", server.name),
        }
    }
    match format {
        Format::Json => print_json(&rows, style),
        Format::Table => {
            if rows.is_empty() {
                println!("no server here signs in with OAuth");
            }
            for row in &rows {
                let state = if row.signed_in {
                    format!(
                        "signed in at {}{}{}{}",
                        row.issuer.as_deref().unwrap_or("?"),
                        scopes_text(&row.scopes),
                        expiry_text(row.expires_in_s),
                        if row.refreshable { ", refreshable" } else { "" }
                    )
                } else {
                    format!("not signed in (switchboard auth login {})", row.server)
                };
                println!("{} ({}): {state}", row.server, row.principal);
            }
        }
    }
    0
}

/// The source narrowed to the one server `name` names (or the only one); prints why not.
fn one_server(args: &SourceArgs, name: Option<&str>) -> Result<(Source, ServerConfig), ()> {
    let source = Source::load(args).map_err(|_| ())?.for_server(name);
    let servers: Vec<ServerConfig> = source
        .servers()
        .into_iter()
        .filter(|s| name.is_none_or(|n| s.name == n))
        .collect();
    match servers.as_slice() {
        [server] if signs_in(server) => Ok((source, server.clone())),
        [server] => {
            eprintln!(
                "error: {} does not sign in with OAuth (a stdio server, an Authorization \
                 header, or auth kind = \"none\")",
                server.name
            );
            Err(())
        }
        [] => {
            eprintln!("error: no server {:?} in this config", name.unwrap_or(""));
            Err(())
        }
        _ => {
            eprintln!("error: name the server: switchboard auth login SERVER");
            Err(())
        }
    }
}

/// Whether the engine signs in to `server` (see `auth::oauth_config` in the engine).
fn signs_in(server: &ServerConfig) -> bool {
    let header = server
        .headers
        .keys()
        .any(|h| h.eq_ignore_ascii_case("authorization"));
    server.transport == TransportKind::StreamableHttp
        && match &server.auth {
            Some(auth) => auth.kind != AuthKind::None && !(auth.kind == AuthKind::Auto && header),
            // per_session servers sign in only with an [auth] table (see the engine).
            None => !header && server.session_mode != SessionMode::PerSession,
        }
}

fn key_of(server: &ServerConfig) -> TokenKey {
    TokenKey {
        server: server.name.clone(),
        url: server.url.clone().unwrap_or_default(),
        principal: server
            .auth
            .as_ref()
            .map_or(SHARED_PRINCIPAL.to_owned(), |a| a.principal.clone()),
    }
}

fn row_of(server: &ServerConfig, record: Option<&TokenRecord>) -> Row {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    Row {
        server: server.name.clone(),
        principal: key_of(server).principal,
        signed_in: record.is_some(),
        issuer: record.and_then(|r| r.issuer.clone()),
        scopes: record.map(|r| r.scopes.clone()).unwrap_or_default(),
        expires_in_s: record.and_then(|r| r.expires_at).map(|at| at as i64 - now),
        refreshable: record.is_some_and(|r| r.refresh_token.is_some()),
    }
}

fn scopes_text(scopes: &[String]) -> String {
    if scopes.is_empty() {
        String::new()
    } else {
        format!(" with scopes {}", scopes.join(" "))
    }
}

fn expiry_text(expires_in_s: Option<i64>) -> String {
    match expires_in_s {
        None => String::new(),
        Some(s) if s <= 0 => ", access token expired".to_owned(),
        Some(s) => format!(
            ", access token expires in {}",
            humantime::format_duration(Duration::from_secs(s as u64))
        ),
    }
}
