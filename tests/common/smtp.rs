//! A real SMTP server for notifier tests: Python's `aiosmtpd`, run from a script written to
//! a temporary directory, with STARTTLS (a certificate of a test CA made with `openssl`) and
//! AUTH PLAIN/LOGIN required, with implicit TLS, or plain (no STARTTLS, no AUTH). Every message received is
//! parsed with Python's `email` package and saved as JSON (envelope, TLS, AUTH mechanism,
//! decoded headers, content type and decoded parts) for the test to read.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user and password the server accepts.
pub const USER: &str = "strata";
pub const PASSWORD: &str = "s3cret";

const SCRIPT: &str = r#"
import asyncio, email, json, logging, os, ssl, sys, time, warnings
from email import policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

# The LOGIN challenges Postfix and most servers send (Go's net/smtp LOGIN, which
# Alertmanager uses, knows only these).
SMTP.AuthLoginUsernameChallenge = "Username:"
SMTP.AuthLoginPasswordChallenge = "Password:"

warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

port, outdir, mode, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=policy.default)
        parts = []
        for p in (msg.iter_parts() if msg.is_multipart() else [msg]):
            parts.append({
                "content_type": p.get_content_type(),
                "charset": (p.get_content_charset() or "").lower(),
                "cte": str(p.get("Content-Transfer-Encoding", "")).lower(),
                "body": p.get_content(),
            })
        rec = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None
                   or server.transport.get_extra_info("ssl_object") is not None,
            "mech": getattr(session, "strata_mech", None),
            "hello": session.host_name,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "content_type": msg.get_content_type(),
            "parts": parts,
        }
        path = os.path.join(outdir, "%d.json" % time.time_ns())
        with open(path + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(path + ".tmp", path)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == b"strata" and auth_data.password == b"s3cret")
    if ok:
        session.strata_mech = mechanism
    return AuthResult(success=ok, handled=False)

kw = {}
if mode.startswith("starttls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = dict(tls_context=ctx, require_starttls=True, authenticator=authenticator,
              auth_required=True)
    if mode == "starttls-plain":
        kw["auth_exclude_mechanism"] = ["LOGIN"]
elif mode == "implicit":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = dict(ssl_context=ctx, authenticator=authenticator, auth_required=True,
              auth_require_tls=False)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
open(os.path.join(outdir, "..", "ready-%d" % port), "w").close()
try:
    while True:
        time.sleep(1)
finally:
    c.stop()
"#;

/// Whether Python can import `aiosmtpd` (else the test prints why it skips).
pub fn available() -> Result<(), String> {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Err("python3 cannot import aiosmtpd (.ci/run installs it with pip)".into());
    }
    let openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !openssl {
        return Err("openssl is not installed (needed for the test certificate)".into());
    }
    Ok(())
}

/// A test CA and a server certificate it signed for `localhost` and `127.0.0.1`, in `dir`:
/// `(ca, cert, key)` (rustls refuses a CA certificate as the server's own).
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=strata test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        p("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

/// A running SMTP server.
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub outdir: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Starts a server in `dir`: `mode` is `starttls` (STARTTLS and AUTH LOGIN/PLAIN
    /// required), `starttls-plain` (AUTH PLAIN only), `implicit` (TLS from the first byte,
    /// AUTH required) or `plain` (neither TLS nor AUTH offered).
    pub fn start(dir: &Path, mode: &str, cert: &Path, key: &Path) -> Smtp {
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SCRIPT).expect("write script");
        for _ in 0..5 {
            let port = crate::common::free_port();
            let outdir = dir.join(format!("mail-{port}"));
            std::fs::create_dir_all(&outdir).expect("mkdir");
            let child = Command::new("python3")
                .arg(&script)
                .arg(port.to_string())
                .arg(&outdir)
                .arg(mode)
                .arg(cert)
                .arg(key)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn python3");
            let mut s = Smtp {
                child,
                port,
                outdir,
            };
            let ready = dir.join(format!("ready-{port}"));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if ready.exists() {
                    return s;
                }
                if let Ok(Some(_)) = s.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("the SMTP server did not start");
    }

    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outdir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// Waits up to `secs` for `n` messages.
    pub fn wait(&self, n: usize, secs: u64) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.messages();
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The value of header `name` of a saved message (first occurrence).
pub fn header(m: &serde_json::Value, name: &str) -> Option<String> {
    m["headers"].as_array()?.iter().find_map(|h| {
        (h[0].as_str()?.eq_ignore_ascii_case(name)).then(|| h[1].as_str().unwrap_or("").to_owned())
    })
}
