//! KPI definitions on small fixtures written straight into the marts (issue 9 §1, defects 2 and
//! 3): each test fails on the old formula or shape.

use pulso_testkit as common;

use common::*;

/// Defect 2: `commitmentConversion` is PDP ÷ effective contacts (docs/kpis.md: tasa_conversion),
/// not PDP ÷ calls; `closingRate` has no agreed definition, so it is 0 and listed in
/// `metadata.unavailable` (never the conversion figure relabelled), and ranking by it is 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_conversion_is_promises_per_effective_contact() {
    let db = TestDb::migrated("kpi_conv").await;
    let c = db.client().await;
    // Agent A: 10 calls, 4 effective contacts, 2 promises over two days and two campaigns
    // → 50 % (the old PDP ÷ calls gave 20 %). Agent B: 8 calls, 8 effective, 1 promise → 12.5 %.
    c.batch_execute(
        "INSERT INTO mart.productividad VALUES \
         ('2025-06-02', 'a@x.pe', 'C1', 'Ana', '1', 'TEMPRANA', 6, 3, 3, 1, 10, 1, 0, 0, now(), now()), \
         ('2025-06-03', 'a@x.pe', 'C2', 'Ana', '1', 'TEMPRANA', 4, 1, 3, 1, 10, 1, 0, 0, now(), now()), \
         ('2025-06-03', 'b@x.pe', 'C1', 'Bea', '2', 'TEMPRANA', 8, 8, 0, 1, 10, 1, 0, 0, now(), now())",
    )
    .await
    .unwrap();
    let server = TestServer::start(config(&db.url)).await;
    let (s, v) = get_json(&server.url(
        "/api/v1/productivity?fecha_inicio=2025-06-01&fecha_fin=2025-06-30&rankBy=commitmentConversion",
    ))
    .await;
    assert_eq!(s, 200, "{v}");
    let ranking = v["agentRanking"].as_array().unwrap();
    assert_eq!(ranking[0]["id"], "a@x.pe", "ranked by PDP ÷ CE: {v}");
    assert_eq!(ranking[0]["commitmentConversion"], 50.0);
    assert_eq!(ranking[1]["commitmentConversion"], 12.5);
    // Totals: 3 promises ÷ 12 effective contacts.
    assert_eq!(v["totals"]["commitmentConversion"], 25.0);
    for a in ranking {
        assert_eq!(a["closingRate"], 0.0, "closingRate is not served: {a}");
    }
    assert_eq!(v["totals"]["closingRate"], 0.0);
    let unavailable = v["metadata"]["unavailable"].as_array().unwrap();
    assert!(
        unavailable.contains(&"closingRate".into()),
        "{unavailable:?}"
    );
    let (s, e) = get_json(&server.url(
        "/api/v1/productivity?fecha_inicio=2025-06-01&fecha_fin=2025-06-30&rankBy=closingRate",
    ))
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["parameter"], "rankBy");
    server.stop().await;
}

/// Defect 3: a cartera with no accounts in either month (the month-after placeholder rows of
/// `mart.asignacion`) is not a row of `detailBreakdown`, as it is not one of `compositionData`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_breakdown_skips_carteras_without_accounts() {
    let db = TestDb::migrated("kpi_detail").await;
    let c = db.client().await;
    // TEMPRANA has accounts in both months; ALTAS_NUEVAS only in May (a real row: it left);
    // OTRAS has only zero rows (placeholders of a month after its data).
    c.batch_execute(
        "INSERT INTO mart.asignacion VALUES \
         ('2025-06', 'TEMPRANA', 'MOVIL', '2025-05', 10, 8, 1000, 900, 9, 7, 800, 700), \
         ('2025-05', 'TEMPRANA', 'MOVIL', '2025-04', 9, 7, 800, 700, 0, 0, 0, 0), \
         ('2025-05', 'ALTAS_NUEVAS', 'FIJA', '2025-04', 5, 5, 500, 400, 0, 0, 0, 0), \
         ('2025-06', 'ALTAS_NUEVAS', 'FIJA', '2025-05', 0, 0, 0, 0, 5, 5, 500, 400), \
         ('2025-06', 'OTRAS', 'FIJA', '2025-05', 0, 0, 0, 0, 0, 0, 0, 0), \
         ('2025-05', 'OTRAS', 'FIJA', '2025-04', 0, 0, 0, 0, 0, 0, 0, 0)",
    )
    .await
    .unwrap();
    let server = TestServer::start(config(&db.url)).await;
    let (s, v) =
        get_json(&server.url("/api/v1/assignment?currentPeriod=2025-06&previousPeriod=2025-05"))
            .await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["detailBreakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TEMPRANA", "ALTAS_NUEVAS", "Total"], "{v}");
    let composition: Vec<&str> = v["compositionData"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(composition, ["TEMPRANA"]);
    let total = v["detailBreakdown"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(total["cuentasActual"], 10);
    assert_eq!(total["cuentasAnterior"], 14);
    server.stop().await;
}
