//! `switchboard`: see and try your MCP servers from a terminal.
//!
//! This binary parses arguments, asks the engine, and prints. Anything smarter belongs in the
//! `switchboard` crate.

mod ask;
mod auth;
mod call;
mod check;
mod demo;
mod describe;
mod help;
mod offers;
mod output;
mod progress;
mod resolve;
mod serve;
mod source;
mod tools;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use output::JsonStyle;

/// mimalloc instead of the system allocator: see `Cargo.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "List and call the tools of your MCP servers; read their resources and prompts",
    after_help = help::MAIN
)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How JSON is laid out on stdout [default: pretty on a terminal, compact when piped]
    #[arg(long, value_enum, value_name = "STYLE", global = true)]
    json_style: Option<JsonStyle>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect to every enabled server and list the merged tool catalogue (SERVER__TOOL names).
    #[command(after_help = help::TOOLS)]
    Tools {
        #[command(flatten)]
        source: SourceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: tools::Format,
        /// Show one tool: its arguments (name, type, required, description, allowed values,
        /// default; nested objects indented), or with --format, its entry in that form.
        #[arg(long, value_name = "NAME")]
        describe: Option<String>,
    },
    /// Call one tool and print its result.
    #[command(after_help = help::CALL)]
    Call {
        /// The tool's exposed name as `tools` shows it; a tool's own name or alias also works
        /// when only one server has it.
        name: String,
        /// Arguments: a JSON object, @FILE to read it from a file, or - to read it from stdin.
        args: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        /// How long the call may take (e.g. 30s, 2m). Defaults to the server's tool_call_timeout.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Print the whole outcome (every content block, structuredContent, isError) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every server's resources (SERVER+URI) and resource templates.
    #[command(after_help = help::RESOURCES)]
    Resources {
        #[command(flatten)]
        source: SourceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: offers::Format,
    },
    /// Read one resource and print its content.
    #[command(after_help = help::READ)]
    Read {
        /// The resource's exposed URI as `resources` shows it (SERVER+URI), e.g. a template
        /// filled in.
        uri: String,
        #[command(flatten)]
        source: SourceArgs,
        /// How long the read may take (e.g. 30s). Defaults to the server's tool_call_timeout.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Print every part as JSON (binary parts as base64).
        #[arg(long)]
        json: bool,
    },
    /// List every server's prompts (SERVER__PROMPT) and their arguments.
    #[command(after_help = help::PROMPTS)]
    Prompts {
        #[command(flatten)]
        source: SourceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: offers::Format,
    },
    /// Get one prompt with its arguments and print its messages.
    #[command(after_help = help::PROMPT)]
    Prompt {
        /// The prompt's exposed name as `prompts` shows it.
        name: String,
        /// Arguments: key=value words, or one JSON object (@FILE to read it from a file, -
        /// from stdin).
        args: Vec<String>,
        #[command(flatten)]
        source: SourceArgs,
        /// How long getting it may take (e.g. 30s). Defaults to the server's tool_call_timeout.
        #[arg(long, value_parser = humantime::parse_duration)]
        timeout: Option<std::time::Duration>,
        /// Print the whole result (description, messages with their content blocks) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Connect to every server and report its health.
    /// Sign in to OAuth servers, see who is signed in, sign out.
    #[command(after_help = help::AUTH)]
    Auth {
        #[command(subcommand)]
        command: auth::AuthCommand,
    },
    #[command(after_help = help::CHECK)]
    Check {
        #[command(flatten)]
        source: SourceArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: check::Format,
    },
    /// Serve every server's tools, resources and prompts over HTTP: one MCP endpoint (/mcp)
    /// and a REST API (/v1/), until SIGTERM or ctrl-c.
    #[command(after_help = help::SERVE)]
    Serve {
        /// Config file: Switchboard TOML, or an mcpServers / VS Code JSON file.
        #[arg(
            long,
            short = 'c',
            value_name = "FILE",
            default_value = "switchboard.toml"
        )]
        config: Option<PathBuf>,
        /// Address to listen on [default: [gateway] listen, else 127.0.0.1:8080].
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Key rotation with [scale] store = "redis": move every Redis record still under an
    /// older keyring key to the primary key's names and seal (before the old key is dropped).
    Rekey {
        /// Config file (its [scale] table: the keyring and the Redis store).
        #[arg(
            long,
            short = 'c',
            value_name = "FILE",
            default_value = "switchboard.toml"
        )]
        config: Option<PathBuf>,
    },
}

/// Where the servers come from: a config file, or one server given on the command line.
#[derive(Args, Clone, Debug)]
pub struct SourceArgs {
    /// Config file: Switchboard TOML, or an mcpServers / VS Code JSON file [default:
    /// ./switchboard.toml if it exists, else the built-in demo server]
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with_all = ["url", "stdio"])]
    config: Option<PathBuf>,
    /// Use this one Streamable HTTP or SSE server instead of a config file
    /// (e.g. http://127.0.0.1:3001/mcp).
    #[arg(long, value_name = "URL", conflicts_with = "stdio")]
    url: Option<String>,
    /// Use this one stdio server instead of a config file, e.g. --stdio 'npx -y some-server'.
    #[arg(long, value_name = "COMMAND")]
    stdio: Option<String>,
    /// Sign in (OAuth, in a browser) to a server that asks, even without a terminal.
    #[arg(long, conflicts_with = "no_login")]
    login: bool,
    /// Never sign in interactively, even at a terminal.
    #[arg(long)]
    no_login: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The gateway says where it listens (and what happens to it) at INFO.
    let serving = matches!(cli.command, Command::Serve { .. });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // `serve` exports traces when the OTEL_* variables ask for it (the gateway's `otel`).
    let traces = match serving {
        true => {
            let _runtime = runtime.enter();
            match switchboard_gateway::otel::from_env() {
                Ok(traces) => traces,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(source::EXIT_BAD_INPUT);
                }
            }
        }
        false => None,
    };
    let (otel_layer, traces) = traces.unzip();
    init_logging(cli.verbose.max(u8::from(serving)), otel_layer);
    let style = JsonStyle::or_default(cli.json_style);
    let code = runtime.block_on(async {
        match cli.command {
            Command::Tools {
                source,
                format,
                describe,
            } => tools::run(&source, format, describe.as_deref(), style).await,
            Command::Call {
                name,
                args,
                source,
                timeout,
                json,
            } => {
                let request = call::Request {
                    name: &name,
                    arguments: args.as_deref(),
                    timeout,
                    json,
                    style,
                };
                call::run(&source, request).await
            }
            Command::Check { source, format } => check::run(&source, format, style).await,
            Command::Auth { command } => auth::run(command, style).await,
            Command::Serve { config, listen } => {
                let injector = traces
                    .as_ref()
                    .map(|_| switchboard_gateway::otel::injector());
                let code = serve::run(config, listen, injector).await;
                if let Some(traces) = traces {
                    traces.shutdown().await;
                }
                code
            }
            Command::Rekey { config } => serve::rekey(config).await,
            Command::Resources { source, format } => {
                offers::list_resources(&source, format, style).await
            }
            Command::Prompts { source, format } => {
                offers::list_prompts(&source, format, style).await
            }
            Command::Read {
                uri,
                source,
                timeout,
                json,
            } => {
                let output = offers::Output {
                    json,
                    timeout,
                    style,
                };
                offers::read(&source, &uri, output).await
            }
            Command::Prompt {
                name,
                args,
                source,
                timeout,
                json,
            } => {
                let output = offers::Output {
                    json,
                    timeout,
                    style,
                };
                offers::prompt(&source, &name, &args, output).await
            }
        }
    });
    ExitCode::from(code)
}

fn init_logging(verbose: u8, otel: Option<switchboard_gateway::otel::OtelLayer>) {
    // rmcp logs transport failures with full URLs, whose query may carry a token: it stays
    // off unless RUST_LOG asks for it. Our own errors say the same without the URL.
    // Failed servers and catalogue diagnostics are printed by the commands themselves.
    let default = match verbose {
        0 => "warn,rmcp=off,switchboard::registration=off",
        1 => "info,rmcp=off",
        _ => "debug,rmcp=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal who did not ask for none.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    if let Some(otel) = otel {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .with_filter(filter);
        tracing_subscriber::registry().with(otel).with(fmt).init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}
