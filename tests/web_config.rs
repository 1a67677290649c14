//! `--web.config.file`: TLS, basic authentication with bcrypt hashes, security headers, and
//! clear errors for a bad file. Certificates come from the `openssl` command line and
//! requests go through `curl` (both part of the base system).

mod common;

use std::path::Path;
use std::process::Command;

use common::free_port;

fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(cmd)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn self_signed(dir: &Path) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// curl's status code and headers for `url`.
fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (code, text.to_ascii_lowercase())
}

fn start_tls(data: &Path, web: &Path) -> (std::process::Child, u16) {
    let port = free_port();
    let cfg = std::env::temp_dir().join("strata-test-no-scrape.yml");
    if !cfg.exists() {
        std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").expect("write");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web.display()))
        .arg("--log.level=warn")
        .spawn()
        .expect("spawn");
    (child, port)
}

#[test]
fn tls_basic_auth_and_headers() {
    if !have("openssl") || !have("curl") {
        eprintln!("SKIP: openssl or curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    self_signed(dir.path());
    let hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  min_version: TLS12\nbasic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"
        ),
    )
    .expect("write");
    let data = dir.path().join("data");
    let (mut child, port) = start_tls(&data, &web);
    let cacert = dir.path().join("cert.pem");
    let ca = cacert.to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{port}/api/v1/status/buildinfo");
    let mut ready = false;
    for _ in 0..100 {
        let (code, _) = curl(
            &["--cacert", &ca, "-u", "alice:s3cret"],
            &format!("https://127.0.0.1:{port}/-/ready"),
        );
        if code == 200 {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let result = std::panic::catch_unwind(|| {
        assert!(ready, "strata did not become ready over TLS");
        let (code, headers) = curl(&["--cacert", &ca], &url);
        assert_eq!(code, 401, "no credentials");
        assert!(headers.contains("www-authenticate: basic"), "{headers}");
        assert!(headers.contains("x-frame-options: deny"), "{headers}");
        let (code, _) = curl(&["--cacert", &ca, "-u", "alice:wrong"], &url);
        assert_eq!(code, 401, "wrong password");
        let (code, headers) = curl(&["--cacert", &ca, "-u", "alice:s3cret"], &url);
        assert_eq!(code, 200, "{headers}");
        assert!(headers.contains("strict-transport-security: max-age=31536000"));
        let (code, _) = curl(&[], &format!("http://127.0.0.1:{port}/-/healthy"));
        assert_ne!(code, 200, "plain HTTP must not be served");
        let (code, _) = curl(
            &["--cacert", &ca, "--tls-max", "1.1", "-u", "alice:s3cret"],
            &url,
        );
        assert_ne!(code, 200, "TLS 1.1 is below min_version");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// Starts strata with `web` and expects it to refuse to start; returns its stderr.
fn refused_startup(dir: &Path, web: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg(format!("--storage.tsdb.path={}", dir.join("d").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .arg(format!("--web.config.file={}", web.display()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_web_config_names_file_and_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  bob: plaintext\n").expect("write");
    let err = refused_startup(dir.path(), &web);
    assert!(
        err.contains("web.yml") && err.contains("basic_auth_users.bob"),
        "{err}"
    );
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: x.pem\n  keyfile: y\n",
    )
    .expect("write");
    let err = refused_startup(dir.path(), &web);
    assert!(err.contains("keyfile"), "{err}");
}

/// `client_auth_type: RequireAndVerifyClientCert`: only clients with a certificate signed by
/// `client_ca_file` get through the handshake.
#[test]
fn client_certificates_are_verified() {
    if !have("openssl") || !have("curl") {
        eprintln!("SKIP: openssl or curl is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    self_signed(d);
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=client",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    // An X.509 v3 certificate (with extensions): rustls refuses v1 ones.
    std::fs::write(
        d.join("client.ext"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write");
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client.ext",
        "-out",
        "client.pem",
    ]);
    let web = d.join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    )
    .expect("write");
    let (mut child, port) = start_tls(&d.join("data"), &web);
    let ca = d.join("cert.pem").to_string_lossy().into_owned();
    let cert = d.join("client.pem").to_string_lossy().into_owned();
    let key = d.join("client.key").to_string_lossy().into_owned();
    let url = format!("https://127.0.0.1:{port}/-/healthy");
    let with_cert = [
        "--cacert",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    let mut ok = false;
    for _ in 0..100 {
        if curl(&with_cert, &url).0 == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let without = curl(&["--cacert", &ca], &url).0;
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "a client with a certificate from the CA is served");
    assert_ne!(without, 200, "a client without a certificate is refused");
}
