//! Issue 9 defects 2 and 3, which live in the API (`pulso-flow serve` over the marts this
//! fixture builds), end to end from source rows; `api/tests/it/api_kpi_fixtures.rs` checks the
//! same definitions on rows written straight into the marts.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// `pulso-flow serve` on a free port, stopped when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db_url: &str) -> Serve {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(common::bin())
        .arg("serve")
        .env("DATABASE_URL", db_url)
        .env("PULSO_API_BIND", format!("127.0.0.1:{port}"))
        .env_remove("REDIS_URL")
        .env("PULSO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pulso-flow serve starts");
    let s = Serve {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let t0 = Instant::now();
    while get(&s, "/ready").is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s
}

/// GET `path`: the JSON body of a 200 answer (curl: no HTTP client dependency needed).
fn get(s: &Serve, path: &str) -> Option<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", &format!("{}{path}", s.base)])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    (code == "200").then(|| serde_json::from_str(body).ok())?
}

/// Defect 2: `commitmentConversion` is PDP ÷ effective contacts (docs/kpis.md), not PDP ÷ calls;
/// `closingRate` has no agreed definition, so it is listed in `metadata.unavailable` instead of
/// carrying another KPI's figure.
#[tokio::test(flavor = "multi_thread")]
async fn productivity_commitment_conversion_is_promises_over_effective_contacts() {
    let f = fixture("kpi_api_prod").await;
    let s = tokio::task::spawn_blocking({
        let url = f.db.url.clone();
        move || serve(&url)
    })
    .await
    .unwrap();
    // ana@x.pe, 06-05 … 06-09: G3 (non-effective), G4 (effective, promise) → 2 calls, 1 effective
    // contact, 1 promise: commitmentConversion = 1 ÷ 1 = 100 (not 1 ÷ 2 = 50).
    let v = get(
        &s,
        "/api/v1/productivity?fecha_inicio=2025-06-05&fecha_fin=2025-06-09",
    )
    .expect("productivity answers 200");
    let ana = v["agentRanking"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == "ana@x.pe"))
        .unwrap_or_else(|| panic!("ana@x.pe not ranked: {v}"));
    assert_eq!(
        (&ana["calls"], &ana["directContacts"], &ana["commitments"]),
        (
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{ana}"
    );
    assert_eq!(
        ana["commitmentConversion"],
        serde_json::json!(100.0),
        "{ana}"
    );
    // Totals: 3 calls (G9 too), 1 effective contact, 1 promise → 100.
    assert_eq!(
        v["totals"]["commitmentConversion"],
        serde_json::json!(100.0),
        "{}",
        v["totals"]
    );
    let unavailable: Vec<&str> = v["metadata"]["unavailable"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(
        unavailable.contains(&"closingRate"),
        "closingRate has no agreed definition: {unavailable:?}"
    );
    assert!(
        ana["closingRate"].is_null() || ana["closingRate"] == serde_json::json!(0.0),
        "closingRate must not carry a figure: {ana}"
    );
}

/// Defect 3: `detailBreakdown` has no row for a cartera without accounts in either month
/// (`mart.asignacion` keeps a month-after row of zeros for a group that only existed the month
/// before; `compositionData` already drops it).
#[tokio::test(flavor = "multi_thread")]
async fn assignment_detail_breakdown_lists_only_carteras_with_accounts() {
    let f = fixture("kpi_api_asig").await;
    let d = f.dir.path();
    // An OTRAS campaign in April only: mart.asignacion has April, and May with zeros.
    write(
        d,
        "calendario.csv",
        &format!(
            "{CALENDARIO}FIX_TARDIA_ABR,2025-04-01,TARDIA,2025-04-07,2025-04-07,2025-04-11,2025-04-11\n"
        ),
    );
    write(
        d,
        "asignaciones.csv",
        &format!(
            "{ASIGNACIONES}601,4001,FIX_TARDIA_ABR.txt,2025-04-06,FIJA,T1,2025-03-05,2025-04-06T12:00:00Z\n"
        ),
    );
    f.run(&[]);
    let zeros: i64 = f
        .client
        .query_one(
            "SELECT count(*) FROM mart.asignacion
              WHERE periodo = '2025-05' AND cartera = 'OTRAS' AND cuentas = 0",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(zeros, 1, "the fixture has May's placeholder row");
    let s = tokio::task::spawn_blocking({
        let url = f.db.url.clone();
        move || serve(&url)
    })
    .await
    .unwrap();
    let v = get(
        &s,
        "/api/v1/assignment?currentPeriod=2025-06&previousPeriod=2025-05",
    )
    .expect("assignment answers 200");
    let rows = v["detailBreakdown"].as_array().expect("detailBreakdown");
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert!(!names.is_empty(), "{v}");
    for r in rows {
        assert!(
            r["cuentasActual"] != serde_json::json!(0)
                || r["cuentasAnterior"] != serde_json::json!(0),
            "a cartera without accounts in either month: {r}"
        );
    }
    assert!(!names.contains(&"OTRAS"), "{names:?}");
}
