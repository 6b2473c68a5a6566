//! `pulso-flow serve` end to end with the real binaries: the API serves the demo, a
//! `pulso-flow run` of new data is visible to the next request without a restart, and SIGTERM
//! stops the server gracefully (exit 0).

use pulso_testkit as common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str) -> Option<(u16, serde_json::Value)> {
    // A blocking client without extra dependencies: curl is on every machine that runs the tests.
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.parse().ok()?, serde_json::from_str(body).ok()?))
}

#[test]
fn serve_sees_a_new_run_at_once_and_stops_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new("serve"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = root.join("examples/demo.yaml");
    let demo = demo.to_str().unwrap();
    let out = cli(&db.url, &["run", demo], &[]);
    assert!(out.status.success(), "{}", text(&out));

    let port = free_port();
    let child = Command::new(bin())
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("PULSO_API_BIND", format!("127.0.0.1:{port}"))
        .env(
            "PULSO_API_REDIS_PREFIX",
            format!("pfserve{}", std::process::id()),
        )
        .env("PULSO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pulso-flow serve starts");
    let mut serve = Serve(child);
    let base = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    loop {
        if let Some((200, r)) = get(&format!("{base}/ready"))
            && r["checks"]["listener"]["status"] == "up"
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, before) = get(&format!("{base}/api/v1/dashboard")).unwrap();
    assert_eq!(s, 200);
    let last = before["fechaCorte"].as_str().unwrap().to_string();

    let out = cli(&db.url, &["run", demo], &[("DEMO_REVISION", "1")]);
    assert!(out.status.success(), "{}", text(&out));
    let (s, after) = get(&format!("{base}/api/v1/dashboard")).unwrap();
    assert_eq!(s, 200);
    assert_ne!(
        after["fechaCorte"].as_str().unwrap(),
        last,
        "stale answer after the run"
    );

    // SIGTERM: graceful stop, exit 0.
    let pid = serve.0.id() as i32;
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = serve.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
}
