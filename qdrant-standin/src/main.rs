//! `qdrant-standin --port <u16, default 6334> --data-dir <path>`

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: qdrant-standin [--port <u16, default 6334>] --data-dir <path>";

fn parse_args() -> Result<(u16, PathBuf), String> {
    let mut port: u16 = 6334;
    let mut data_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|e| format!("invalid --port {v:?}: {e}"))?;
            }
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let data_dir = data_dir.ok_or_else(|| format!("--data-dir is required\n{USAGE}"))?;
    Ok((port, data_dir))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (port, data_dir) = match parse_args() {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let server = match qdrant_standin::start(port, data_dir).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qdrant-standin: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        use std::io::Write;
        println!("qdrant-standin listening on {}", server.addr);
        let _ = std::io::stdout().flush();
    }
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qdrant-standin: cannot install SIGTERM handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("qdrant-standin: shutting down");
    server.stop().await;
    ExitCode::SUCCESS
}
