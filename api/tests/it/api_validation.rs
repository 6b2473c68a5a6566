//! Malformed parameters: 400/422 with a JSON body naming the parameter; nothing reaches SQL as
//! text.

use pulso_testkit as common;

use common::*;
use serde_json::json;

async fn expect(server: &TestServer, path: &str, status: u16, parameter: &str) {
    let (s, v) = get_json(&server.url(path)).await;
    assert_eq!(s, status, "GET {path}: {v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], status);
    assert_eq!(v["parameter"], parameter, "GET {path}: {v}");
    assert!(v["message"].as_str().unwrap().len() > 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_parameters_are_refused() {
    let url = demo_db();
    let mut cfg = config(url);
    cfg.max_list = 20;
    let server = TestServer::start(cfg).await;
    let db = connect(url).await;
    let before: i64 = db
        .query_one("SELECT count(*) FROM mart.dashboard", &[])
        .await
        .unwrap()
        .get(0);

    // Bad dates.
    expect(
        &server,
        "/api/v1/dashboard?fechaCorte=2025-13-01",
        400,
        "fechaCorte",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?fecha_corte=ayer",
        400,
        "fechaCorte",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?fechaCorte=1999-12-31",
        422,
        "fechaCorte",
    )
    .await;
    expect(
        &server,
        "/api/v1/evolution?fecha_inicio=2025-02-30",
        400,
        "fechaInicio",
    )
    .await;
    expect(
        &server,
        "/api/v1/evolution?fecha_inicio=2025-06-30&fecha_fin=2025-06-01",
        422,
        "fechaFin",
    )
    .await;
    expect(
        &server,
        "/api/v1/operation?fecha_analisis=2025/06/16",
        400,
        "fecha_analisis",
    )
    .await;
    expect(
        &server,
        "/api/v1/assignment?currentPeriod=2025-6",
        400,
        "currentPeriod",
    )
    .await;
    // Unknown dimension, metric, comparison.
    expect(
        &server,
        "/api/v1/dashboard?dimensions=cartera,zodiaco",
        422,
        "dimensions",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?dimensions=tipoSegmento",
        422,
        "dimensions",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?dimensions=cartera,tramo,periodo",
        422,
        "dimensions",
    )
    .await;
    expect(
        &server,
        "/api/v1/evolution?metrics=cobertura,felicidad",
        422,
        "metrics",
    )
    .await;
    expect(
        &server,
        "/api/v1/evolution?comparisonDimension=x",
        422,
        "comparisonDimension",
    )
    .await;
    expect(&server, "/api/v1/productivity?rankBy=x", 422, "rankBy").await;
    // Quotes, semicolons and other SQL-ish text in filter values.
    for bad in [
        "TEMPRANA'%20OR%20'1'='1",
        "TEMPRANA;DROP%20TABLE%20mart.dashboard",
        "x%22y",
        "a%5Cb",
        "50%25",
        "line%0Abreak",
    ] {
        expect(
            &server,
            &format!("/api/v1/dashboard?cartera={bad}"),
            400,
            "cartera",
        )
        .await;
        expect(
            &server,
            &format!("/api/v1/evolution?servicio={bad}"),
            400,
            "servicio",
        )
        .await;
    }
    expect(
        &server,
        "/api/v1/dashboard?vencimiento=5;1",
        400,
        "vencimiento",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?vencimiento=40",
        422,
        "vencimiento",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?periodo=2025-06';--",
        400,
        "periodo",
    )
    .await;
    expect(&server, "/api/v1/dashboard?periodo=JUNIO", 422, "periodo").await;
    // Huge lists and values.
    let many: Vec<String> = (0..21).map(|i| format!("C{i}")).collect();
    expect(
        &server,
        &format!("/api/v1/dashboard?cartera={}", many.join(",")),
        422,
        "cartera",
    )
    .await;
    expect(
        &server,
        &format!("/api/v1/dashboard?tramo={}", "T".repeat(65)),
        422,
        "tramo",
    )
    .await;
    // Unknown and repeated single parameters.
    expect(
        &server,
        "/api/v1/dashboard?carteras=TEMPRANA",
        400,
        "carteras",
    )
    .await;
    expect(
        &server,
        "/api/v1/dashboard?fechaCorte=2025-06-01&fechaCorte=2025-06-02",
        400,
        "fechaCorte",
    )
    .await;
    expect(
        &server,
        "/api/v1/operation?include_hourly=maybe",
        400,
        "include_hourly",
    )
    .await;

    // Bodies: wrong types, unknown fields, bad values; all name the field.
    for (body, status, parameter) in [
        (
            json!({"filters": {"cartera": "TEMPRANA"}}),
            400,
            "filters.cartera",
        ),
        (
            json!({"filters": {"vencimiento": ["5"]}}),
            400,
            "filters.vencimiento[0]",
        ),
        (json!({"filtros": {}}), 400, "filtros"),
        (json!({"fechaCorte": "2025-06-31"}), 400, "fechaCorte"),
        (
            json!({"dimensions": ["cartera", "DROP TABLE"]}),
            422,
            "dimensions",
        ),
        (
            json!({"filters": {"servicio": ["MOVIL'--"]}}),
            400,
            "servicio",
        ),
    ] {
        let (s, v) = post_json(&server.url("/api/v1/dashboard"), &body).await;
        assert_eq!(s, status, "POST {body}: {v}");
        assert_eq!(v["parameter"], parameter, "POST {body}: {v}");
    }
    let r = http()
        .post(server.url("/api/v1/dashboard"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    // 415, not 400 (issue 14 item 11), with the error contract.
    assert_eq!(r.status(), 415);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 415);
    let (s, v) = post_json(
        &server.url("/api/v1/evolution"),
        &json!({"fechaInicio": "2025-06-01"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("fechaFin"), "{v}");

    // The data is untouched and the server is fine.
    let after: i64 = db
        .query_one("SELECT count(*) FROM mart.dashboard", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after);
    let (s, _) = get_json(&server.url("/api/v1/dashboard?cartera=TEMPRANA")).await;
    assert_eq!(s, 200);
    server.stop().await;
}
