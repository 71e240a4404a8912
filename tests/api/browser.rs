//! A headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: JSON messages ended by
//! NUL on fds 3 and 4), so no websocket client or browser download is needed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct Browser {
    _child: Child,
    tx: ChildStdin,
    rx: BufReader<ChildStdout>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

/// The browser binary: `LETHE_CHROMIUM`, else `chromium` on PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LETHE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join("chromium")).find(|p| p.is_file())
}

/// Where screenshots go: `$CARGO_TARGET_DIR/web-screenshots` (test artifacts, not committed).
pub fn artifacts() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("web-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

impl Browser {
    pub async fn launch(binary: &std::path::Path) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let cmd = format!(
            "exec '{}' --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions --window-size=1200,900 \
             --remote-debugging-pipe --user-data-dir='{}' about:blank 3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null",
            binary.display(),
            profile.path().display()
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let tx = child.stdin.take().expect("stdin");
        let rx = BufReader::new(child.stdout.take().expect("stdout"));
        let mut b = Self { _child: child, tx, rx, next_id: 0, session: String::new(), _profile: profile };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let target_id = target["targetId"].as_str().expect("target id").to_owned();
        let attached = b.call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true})).await;
        b.session = attached["sessionId"].as_str().expect("session id").to_owned();
        b
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.tx.write_all(&bytes).await.expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(30), self.rx.read_until(0, &mut buf)).await;
            let n = read.expect("chromium answers in time").expect("read from chromium");
            assert!(n > 0, "chromium exited");
            buf.pop();
            let reply: Value = serde_json::from_slice(&buf).expect("CDP json");
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates `expr` in the page (promises awaited) and returns its value.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true, "awaitPromise": true})).await;
        r["result"]["value"].clone()
    }

    /// Waits until `cond` (a JS expression) is true in the page.
    pub async fn wait_for(&mut self, cond: &str) {
        for _ in 0..200 {
            if self.eval(&format!("(() => {{ try {{ return !!({cond}); }} catch (e) {{ return false; }} }})()")).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let html = self.eval("document.documentElement.outerHTML").await;
        panic!("timed out waiting for `{cond}`; page: {html}");
    }

    /// Opens `url` and waits for the new document (after any redirect).
    pub async fn goto(&mut self, url: &str) {
        self.eval("window.__lethe_old = true").await;
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_for("!window.__lethe_old && document.readyState === 'complete'").await;
    }

    /// Runs `js` (which submits a form or follows a link) and waits for the next document.
    pub async fn submit(&mut self, js: &str) {
        self.eval(&format!("window.__lethe_old = true; {js}")).await;
        self.wait_for("!window.__lethe_old && document.readyState === 'complete'").await;
    }

    pub async fn path(&mut self) -> String {
        self.eval("location.pathname").await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn text(&mut self) -> String {
        self.eval("document.body.innerText").await.as_str().unwrap_or_default().to_owned()
    }

    /// Saves a full-page PNG as `<artifacts>/<name>.png`.
    pub async fn screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true})).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("png")).expect("base64");
        std::fs::write(artifacts().join(format!("{name}.png")), png).expect("write screenshot");
    }
}
