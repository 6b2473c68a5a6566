//! Contract tests: every endpoint's JSON against (a) the field names and types the frontend
//! expects (api.md), (b) the OpenAPI document the server publishes (generated from the Rust
//! types), and (c) the numbers in the marts, on the demo data.

use pulso_testkit as common;

use common::*;
use serde_json::{Value, json};

/// Expected fields: `s` string, `i` integer, `n` number, `b` boolean, `a` array, `o` object,
/// an upper-case letter = that kind or null, `z` null.
fn expect_fields(v: &Value, fields: &[(&str, char)], what: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {v}"));
    for (name, kind) in fields {
        let f = obj
            .get(*name)
            .unwrap_or_else(|| panic!("{what}: field {name} missing in {v}"));
        let ok = match kind {
            's' => f.is_string(),
            'i' => f.is_i64() || f.is_u64(),
            'n' => f.is_number(),
            'b' => f.is_boolean(),
            'a' => f.is_array(),
            'o' => f.is_object(),
            'z' => f.is_null(),
            'S' => f.is_string() || f.is_null(),
            'I' => f.is_i64() || f.is_null(),
            'N' => f.is_number() || f.is_null(),
            _ => unreachable!(),
        };
        assert!(ok, "{what}: field {name} should be {kind}, is {f}");
    }
}

const DATA_ROW: &[(&str, char)] = &[
    ("id", 's'),
    ("name", 's'),
    ("status", 's'),
    ("cuentas", 'i'),
    ("porcentajeCuentas", 'n'),
    ("deudaAsig", 'n'),
    ("porcentajeDeuda", 'n'),
    ("porcentajeDeudaStatus", 's'),
    ("deudaAct", 'n'),
    ("porcentajeDeudaAct", 'n'),
    ("porcentajeDeudaActStatus", 's'),
    ("cobertura", 'n'),
    ("contacto", 'n'),
    ("contactoStatus", 's'),
    ("cd", 'n'),
    ("ci", 'n'),
    ("sc", 'n'),
    ("cierre", 'n'),
    ("cierreStatus", 's'),
    ("inten", 'n'),
    ("intenStatus", 's'),
    ("cdCount", 'i'),
    ("ciCount", 'i'),
    ("scCount", 'i'),
    ("sgCount", 'i'),
    ("pdpCount", 'i'),
    ("fracCount", 'i'),
    ("pdpFracCount", 'i'),
    ("fechaAsignacion", 'S'),
    ("fechaCierre", 'S'),
    ("diasGestion", 'I'),
    ("diasHabiles", 'I'),
];

const ICON: [&str; 7] = ["up", "down", "neutral", "warning", "ok", "bad", "none"];

async fn openapi(server: &TestServer) -> Value {
    get_json(&server.url("/api/v1/openapi.json")).await.1
}

/// GET `path`, check it against its documented schema, return the body.
async fn get_checked(server: &TestServer, doc: &Value, path: &str, documented: &str) -> Value {
    let (s, v) = get_json(&server.url(path)).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    let errors = schema_errors(doc, response_schema(doc, documented, "get"), &v);
    assert!(errors.is_empty(), "GET {path} vs OpenAPI: {errors:#?}");
    v
}

async fn post_checked(
    server: &TestServer,
    doc: &Value,
    path: &str,
    body: &Value,
    documented: &str,
) -> Value {
    let (s, v) = post_json(&server.url(path), body).await;
    assert_eq!(s, 200, "POST {path}: {v}");
    let errors = schema_errors(doc, response_schema(doc, documented, "post"), &v);
    assert!(errors.is_empty(), "POST {path} vs OpenAPI: {errors:#?}");
    v
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn pct(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { round2(a / b * 100.0) }
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_contract_and_numbers() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let db = connect(url).await;

    let v = get_checked(&server, &doc, "/api/v1/dashboard", "/api/v1/dashboard").await;
    let fecha = v["fechaCorte"].as_str().expect("a photo date").to_string();
    let photo: chrono::NaiveDate = fecha.parse().unwrap();
    // Default: the latest photo date (all demo dates are in the past).
    let latest: chrono::NaiveDate = db
        .query_one("SELECT max(fecha_foto) FROM mart.dashboard", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(photo, latest);

    for r in v["segmentoData"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["negocioData"].as_array().unwrap())
    {
        expect_fields(r, DATA_ROW, "DataRow");
        assert!(ICON.contains(&r["status"].as_str().unwrap()));
    }
    for p in v["integralChartData"].as_array().unwrap() {
        expect_fields(
            p,
            &[
                ("name", 's'),
                ("cobertura", 'n'),
                ("contacto", 'n'),
                ("contactoDirecto", 'n'),
                ("contactoIndirecto", 'n'),
                ("tasaDeCierre", 'n'),
                ("intensidad", 'n'),
            ],
            "IntegralChartDataPoint",
        );
    }

    // Totals rows from summed counters equal the mart's sums for the photo date.
    let t = db
        .query_one(
            "SELECT sum(cuentas)::int8, sum(cuentas_gestionadas)::int8, sum(cuentas_cd)::int8, \
                    sum(cuentas_ci)::int8, sum(cuentas_pagadoras)::int8, sum(deuda_asig)::float8, \
                    sum(gestiones)::int8, sum(cuentas_pdp)::int8 \
             FROM mart.dashboard WHERE fecha_foto = $1",
            &[&photo],
        )
        .await
        .unwrap();
    let (cuentas, gest, cd, ci, pag, deuda, gestiones, pdp): (
        i64,
        i64,
        i64,
        i64,
        i64,
        f64,
        i64,
        i64,
    ) = (
        t.get(0),
        t.get(1),
        t.get(2),
        t.get(3),
        t.get(4),
        t.get(5),
        t.get(6),
        t.get(7),
    );
    for table in ["segmentoData", "negocioData"] {
        let total = v[table].as_array().unwrap().last().unwrap();
        assert_eq!(total["id"], "total");
        assert_eq!(total["name"], "Total");
        assert_eq!(total["cuentas"], cuentas);
        assert_eq!(total["porcentajeCuentas"], 100.0);
        assert_eq!(total["cdCount"], cd);
        assert_eq!(total["pdpCount"], pdp);
        assert_eq!(total["cobertura"], pct(gest as f64, cuentas as f64));
        assert_eq!(total["contacto"], pct((cd + ci) as f64, cuentas as f64));
        assert_eq!(total["cierre"], pct(pag as f64, cuentas as f64));
        assert_eq!(total["deudaAsig"], round2(deuda));
        assert_eq!(
            total["inten"],
            if gest == 0 {
                0.0
            } else {
                round2(gestiones as f64 / gest as f64)
            }
        );
    }
    // Default grouping: segment = cartera × due-day group, negocio = servicio, chart = cartera.
    for r in db
        .query(
            "SELECT cartera, grupo_vencimiento, sum(cuentas)::int8, sum(cuentas_gestionadas)::int8 \
             FROM mart.dashboard WHERE fecha_foto = $1 GROUP BY 1, 2",
            &[&photo],
        )
        .await
        .unwrap()
    {
        let (c, g, n, m): (String, String, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        let got = row(&v["segmentoData"], &format!("{c} {g}"));
        assert_eq!(got["id"], format!("{c}_{g}"));
        assert_eq!(got["cuentas"], n);
        assert_eq!(got["cobertura"], pct(m as f64, n as f64));
        assert_eq!(got["porcentajeCuentas"], pct(n as f64, cuentas as f64));
    }
    for r in db
        .query(
            "SELECT servicio, sum(cuentas)::int8 FROM mart.dashboard WHERE fecha_foto = $1 GROUP BY 1",
            &[&photo],
        )
        .await
        .unwrap()
    {
        let (s, n): (String, i64) = (r.get(0), r.get(1));
        assert_eq!(row(&v["negocioData"], &s)["cuentas"], n);
    }
    for r in db
        .query(
            "SELECT cartera, sum(cuentas)::int8, sum(cuentas_pagadoras)::int8 \
             FROM mart.dashboard WHERE fecha_foto = $1 GROUP BY 1",
            &[&photo],
        )
        .await
        .unwrap()
    {
        let (c, n, p): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
        assert_eq!(
            row(&v["integralChartData"], &c)["tasaDeCierre"],
            pct(p as f64, n as f64)
        );
    }

    // POST with filters and two dimensions, on an earlier photo date.
    let early = "2025-06-20";
    let body = json!({
        "filters": { "cartera": ["TEMPRANA", "OTRAS"], "servicio": ["MOVIL"] },
        "fechaCorte": early,
        "dimensions": ["tramo", "rangoDeuda"],
    });
    let p = post_checked(
        &server,
        &doc,
        "/api/v1/dashboard",
        &body,
        "/api/v1/dashboard",
    )
    .await;
    assert_eq!(p["fechaCorte"], early);
    let early_d: chrono::NaiveDate = early.parse().unwrap();
    let filtered = |col: &'static str| {
        format!(
            "SELECT {col}, sum(cuentas)::int8 FROM mart.dashboard WHERE fecha_foto = $1 \
             AND cartera IN ('TEMPRANA', 'OTRAS') AND servicio = 'MOVIL' GROUP BY ROLLUP (1)"
        )
    };
    for r in db.query(&filtered("tramo"), &[&early_d]).await.unwrap() {
        let (k, n): (Option<String>, i64) = (r.get(0), r.get(1));
        let name = k.unwrap_or_else(|| "Total".into());
        assert_eq!(row(&p["segmentoData"], &name)["cuentas"], n, "tramo {name}");
    }
    for r in db
        .query(&filtered("rango_deuda"), &[&early_d])
        .await
        .unwrap()
    {
        let (k, n): (Option<String>, i64) = (r.get(0), r.get(1));
        let name = k.unwrap_or_else(|| "Total".into());
        assert_eq!(row(&p["negocioData"], &name)["cuentas"], n, "rango {name}");
    }
    // The GET form of the same request (lists in any order, repeated or comma-separated) is the
    // same answer.
    let g = get_checked(
        &server,
        &doc,
        &format!(
            "/api/v1/dashboard/?fechaCorte={early}&cartera=OTRAS&cartera=TEMPRANA&servicio=MOVIL&dimensions=tramo,rangoDeuda"
        ),
        "/api/v1/dashboard",
    )
    .await;
    assert_eq!(g, p);

    // Campaign rows carry the campaign's dates.
    let c = get_checked(
        &server,
        &doc,
        &format!("/api/v1/dashboard?fechaCorte={early}&dimensions=archivo"),
        "/api/v1/dashboard",
    )
    .await;
    let first = &c["segmentoData"][0];
    assert!(first["fechaAsignacion"].is_string(), "{first}");
    assert!(first["diasGestion"].is_i64());

    // A date without a photo: empty arrays.
    let e = get_checked(
        &server,
        &doc,
        "/api/v1/dashboard?fechaCorte=2024-01-01",
        "/api/v1/dashboard",
    )
    .await;
    assert_eq!(e["segmentoData"], json!([]));
    assert_eq!(e["integralChartData"], json!([]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_contract() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let v = get_checked(&server, &doc, "/api/v1/filters", "/api/v1/filters").await;
    assert_eq!(v["status"], "success");
    let codes = |k: &str| -> Vec<(String, String)> {
        v["data"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                expect_fields(o, &[("value", 's'), ("label", 's')], "FilterOption");
                (
                    o["value"].as_str().unwrap().to_string(),
                    o["label"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let cartera = codes("cartera");
    assert_eq!(cartera[0], ("TODAS".into(), "Todas las Carteras".into()));
    assert!(cartera.contains(&("ALTAS_NUEVAS".into(), "Altas Nuevas".into())));
    let servicio = codes("servicio");
    assert_eq!(servicio[0], ("TODOS".into(), "Todos los Servicios".into()));
    assert!(servicio.contains(&("MOVIL".into(), "Móvil".into())));
    assert!(servicio.contains(&("FIJA".into(), "Fija".into())));
    let periodo = codes("periodo");
    for (code, label) in [
        ("ACTUAL", "Período Actual"),
        ("ANTERIOR", "Período Anterior"),
        ("ULTIMO_MES", "Último Mes"),
        ("ULTIMOS_3_MESES", "Últimos 3 Meses"),
    ] {
        assert!(periodo.contains(&(code.into(), label.into())), "{code}");
    }
    assert!(periodo.iter().any(|(c, _)| c == "2025-06"));
    assert!(!codes("tramo").is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evolution_contract_and_numbers() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let db = connect(url).await;
    let v = get_checked(
        &server,
        &doc,
        "/api/v1/evolution/?fecha_inicio=2025-06-01&fecha_fin=2025-06-30&metrics=cobertura,recupero,intensidad,sc",
        "/api/v1/evolution",
    )
    .await;
    let metrics = v.as_array().unwrap();
    assert_eq!(metrics.len(), 4);
    let types: Vec<(&str, &str)> = metrics
        .iter()
        .map(|m| {
            expect_fields(
                m,
                &[("metric", 's'), ("valueType", 's'), ("series", 'a')],
                "EvolutionMetric",
            );
            (
                m["metric"].as_str().unwrap(),
                m["valueType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        vec![
            ("cobertura", "percent"),
            ("recupero", "currency"),
            ("intensidad", "number"),
            ("sc", "percent")
        ]
    );
    let cob = &metrics[0];
    let names: Vec<&str> = cob["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "ALTAS_NUEVAS",
            "CUOTA_FRACCIONAMIENTO",
            "OTRAS",
            "TEMPRANA",
            "Total"
        ]
    );
    for s in cob["series"].as_array().unwrap() {
        let days: Vec<i64> = s["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                expect_fields(p, &[("day", 'i'), ("value", 'n')], "point");
                p["day"].as_i64().unwrap()
            })
            .collect();
        assert!(days.windows(2).all(|w| w[0] < w[1]), "sorted by day");
    }
    // Numbers: TEMPRANA on management day 5 = the mart's sums over the range.
    let r = db
        .query_one(
            "SELECT sum(cuentas_gestionadas)::float8, sum(cuentas)::float8, sum(recupero)::float8 \
             FROM mart.evolucion WHERE fecha_foto BETWEEN '2025-06-01' AND '2025-06-30' \
               AND cartera = 'TEMPRANA' AND dia_gestion = 5",
            &[],
        )
        .await
        .unwrap();
    let (g, c, rec): (f64, f64, f64) = (r.get(0), r.get(1), r.get(2));
    let point = |m: &Value, serie: &str, day: i64| -> f64 {
        m["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == serie)
            .unwrap()["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["day"] == day)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(point(cob, "TEMPRANA", 5), pct(g, c));
    assert_eq!(point(&metrics[1], "TEMPRANA", 5), round2(rec));

    // POST, one series per servicio.
    let p = post_checked(
        &server,
        &doc,
        "/api/v1/evolution",
        &json!({
            "filters": { "cartera": "TEMPRANA" },
            "fechaInicio": "2025-06-01",
            "fechaFin": "2025-06-30",
            "comparisonDimension": "servicio",
        }),
        "/api/v1/evolution",
    )
    .await;
    let m: Vec<&str> = p
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["metric"].as_str().unwrap())
        .collect();
    assert_eq!(m, vec!["cobertura", "contacto", "cierre", "intensidad"]);
    let series: Vec<&str> = p[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(series, vec!["FIJA", "MOVIL", "Total"]);

    let c = get_checked(
        &server,
        &doc,
        "/api/v1/evolution/carteras",
        "/api/v1/evolution/carteras",
    )
    .await;
    assert_eq!(
        c,
        json!(["ALTAS_NUEVAS", "CUOTA_FRACCIONAMIENTO", "OTRAS", "TEMPRANA"])
    );
    let m = get_checked(
        &server,
        &doc,
        "/api/v1/evolution/metrics",
        "/api/v1/evolution/metrics",
    )
    .await;
    assert_eq!(m["status"], "success");
    for e in m["data"].as_array().unwrap() {
        expect_fields(
            e,
            &[("metric", 's'), ("description", 's'), ("valueType", 's')],
            "MetricInfo",
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_contract_and_numbers() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let db = connect(url).await;
    let v = get_checked(
        &server,
        &doc,
        "/api/v1/assignment/?fecha_actual=2025-06-15&fecha_anterior=2025-05-15",
        "/api/v1/assignment",
    )
    .await;
    expect_fields(
        &v,
        &[
            ("status", 's'),
            ("message", 's'),
            ("data", 'o'),
            ("kpis", 'a'),
            ("compositionData", 'a'),
            ("detailBreakdown", 'a'),
            ("metadata", 'o'),
            ("success", 'b'),
            ("currentPeriod", 's'),
            ("previousPeriod", 's'),
            ("queryTime", 's'),
        ],
        "AssignmentAnalysisResponse",
    );
    assert_eq!(v["currentPeriod"], "2025-06-01");
    assert_eq!(v["previousPeriod"], "2025-05-01");
    expect_fields(
        &v["metadata"],
        &[
            ("fechaActual", 's'),
            ("fechaAnterior", 's'),
            ("totalCarteras", 'i'),
            ("lastRefresh", 'S'),
        ],
        "metadata",
    );
    let labels: Vec<&str> = v["kpis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            expect_fields(
                k,
                &[
                    ("label", 's'),
                    ("valorActual", 'n'),
                    ("valorAnterior", 'n'),
                    ("variacion", 'n'),
                    ("valueType", 's'),
                ],
                "AssignmentKPI",
            );
            k["label"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        labels,
        vec![
            "Total Clientes",
            "Total Cuentas",
            "Saldo Total Deuda",
            "Ticket Promedio"
        ]
    );
    let t = db
        .query_one(
            "SELECT sum(cuentas)::float8, sum(clientes)::float8, sum(deuda_asig)::float8 \
             FROM mart.asignacion WHERE periodo = '2025-06'",
            &[],
        )
        .await
        .unwrap();
    let (cuentas, clientes, deuda): (f64, f64, f64) = (t.get(0), t.get(1), t.get(2));
    assert_eq!(v["kpis"][0]["valorActual"], clientes);
    assert_eq!(v["kpis"][1]["valorActual"], cuentas);
    assert_eq!(v["kpis"][2]["valorActual"], round2(deuda));
    // No data in May: variation 100.
    assert_eq!(v["kpis"][1]["valorAnterior"], 0.0);
    assert_eq!(v["kpis"][1]["variacion"], 100.0);
    // Real clients, never cuentas ÷ 1.2.
    assert_ne!(clientes, (cuentas / 1.2).floor());
    for r in v["detailBreakdown"].as_array().unwrap() {
        expect_fields(
            r,
            &[
                ("id", 's'),
                ("name", 's'),
                ("clientesActual", 'i'),
                ("clientesAnterior", 'i'),
                ("cuentasActual", 'i'),
                ("cuentasAnterior", 'i'),
                ("saldoActual", 'n'),
                ("saldoAnterior", 'n'),
                ("ticketPromedioActual", 'n'),
                ("ticketPromedioAnterior", 'n'),
            ],
            "DetailBreakdownRow",
        );
    }
    let total = v["detailBreakdown"].as_array().unwrap().last().unwrap();
    assert_eq!(total["id"], "total");
    assert_eq!(total["cuentasActual"].as_f64().unwrap(), cuentas);
    let comp = v["compositionData"].as_array().unwrap();
    assert!(
        comp.windows(2)
            .all(|w| w[0]["value"].as_f64() >= w[1]["value"].as_f64())
    );
    assert_eq!(
        round2(
            comp.iter()
                .map(|c| c["value"].as_f64().unwrap())
                .sum::<f64>()
        ),
        round2(deuda)
    );

    // POST with months, current vs previous.
    let p = post_checked(
        &server,
        &doc,
        "/api/v1/assignment",
        &json!({ "currentPeriod": "2025-07", "previousPeriod": "2025-06", "filters": {"cartera": ["ALTAS_NUEVAS"]} }),
        "/api/v1/assignment",
    )
    .await;
    let a = db
        .query_one(
            "SELECT (sum(cuentas) FILTER (WHERE periodo = '2025-07'))::float8, \
                    (sum(cuentas) FILTER (WHERE periodo = '2025-06'))::float8 \
             FROM mart.asignacion WHERE cartera = 'ALTAS_NUEVAS'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        p["kpis"][1]["valorActual"].as_f64(),
        a.get::<_, Option<f64>>(0)
    );
    assert_eq!(
        p["kpis"][1]["valorAnterior"].as_f64(),
        a.get::<_, Option<f64>>(1)
    );

    let s = get_checked(
        &server,
        &doc,
        "/api/v1/assignment/summary?fecha_corte=2025-06-30",
        "/api/v1/assignment/summary",
    )
    .await;
    expect_fields(
        &s,
        &[
            ("fechaCorte", 's'),
            ("totalCuentas", 'i'),
            ("totalClientes", 'i'),
            ("saldoTotal", 'n'),
            ("ticketPromedio", 'n'),
            ("totalCarteras", 'i'),
            ("timestamp", 's'),
        ],
        "summary",
    );
    assert_eq!(s["totalCuentas"].as_f64().unwrap(), cuentas);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_contract_and_numbers() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let db = connect(url).await;
    let day = "2025-06-16";
    let v = get_checked(
        &server,
        &doc,
        &format!("/api/v1/operation/?fecha_analisis={day}"),
        "/api/v1/operation",
    )
    .await;
    for k in v["kpis"].as_array().unwrap() {
        expect_fields(k, &[("label", 's'), ("value", 's')], "OperationDayKPI");
    }
    let d: chrono::NaiveDate = day.parse().unwrap();
    let sums = db
        .query(
            "SELECT canal, sum(gestiones)::int8, sum(contactos_efectivos)::int8, sum(pdp)::int8 \
             FROM mart.operacion WHERE fecha = $1 GROUP BY ROLLUP (canal)",
            &[&d],
        )
        .await
        .unwrap();
    for r in &sums {
        let canal: Option<String> = r.get(0);
        let label = match canal.as_deref() {
            Some("BOT") => "Voicebot",
            Some("HUMANO") => "Call Center",
            None => "Total",
            Some(other) => panic!("channel {other}"),
        };
        let row = v["channelPerformance"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == label)
            .unwrap();
        expect_fields(
            row,
            &[
                ("channel", 's'),
                ("calls", 'i'),
                ("effectiveContacts", 'i'),
                ("nonEffectiveContacts", 'i'),
                ("pdp", 'i'),
                ("cierreRate", 'n'),
            ],
            "ChannelMetric",
        );
        let (calls, ce, pdp): (i64, i64, i64) = (r.get(1), r.get(2), r.get(3));
        assert_eq!(row["calls"], calls);
        assert_eq!(row["effectiveContacts"], ce);
        assert_eq!(row["nonEffectiveContacts"], calls - ce);
        assert_eq!(row["pdp"], pdp);
        assert_eq!(row["cierreRate"], pct(pdp as f64, ce as f64));
        if canal.is_none() {
            assert_eq!(v["totals"]["calls"], calls);
            let total_calls = v["kpis"][0]["value"].as_str().unwrap().replace(',', "");
            assert_eq!(total_calls, calls.to_string());
        }
    }
    for h in v["hourlyPerformance"].as_array().unwrap() {
        expect_fields(
            h,
            &[
                ("hour", 's'),
                ("effectiveContacts", 'i'),
                ("nonEffectiveContacts", 'i'),
                ("pdp", 'i'),
            ],
            "hourly",
        );
        let hour = h["hour"].as_str().unwrap();
        assert!(
            hour == "Total" || (hour.len() == 5 && hour.ends_with(":00")),
            "{hour}"
        );
    }
    let attempts = v["attemptEffectiveness"].as_array().unwrap();
    assert!(!attempts.is_empty());
    for a in attempts {
        expect_fields(a, &[("attempt", 'i'), ("cierreRate", 'n')], "attempt");
    }
    for q in v["queuePerformance"].as_array().unwrap() {
        expect_fields(
            q,
            &[
                ("queueName", 's'),
                ("calls", 'i'),
                ("effectiveContacts", 'i'),
                ("pdp", 'i'),
                ("cierreRate", 'n'),
            ],
            "queue",
        );
    }
    // Flags off → empty arrays; POST with the same day is the same numbers.
    let p = post_checked(
        &server,
        &doc,
        "/api/v1/operation",
        &json!({ "date": day, "includeHourlyBreakdown": false, "includeQueueDetails": false, "includeAttemptAnalysis": false }),
        "/api/v1/operation",
    )
    .await;
    assert_eq!(p["hourlyPerformance"], json!([]));
    assert_eq!(p["queuePerformance"], json!([]));
    assert_eq!(p["attemptEffectiveness"], json!([]));
    assert_eq!(p["channelPerformance"], v["channelPerformance"]);
    let k = get_checked(
        &server,
        &doc,
        &format!("/api/v1/operation/kpis?fecha_analisis={day}"),
        "/api/v1/operation/kpis",
    )
    .await;
    assert_eq!(k, v["kpis"]);
    let c = get_checked(
        &server,
        &doc,
        &format!("/api/v1/operation/channels?fecha_analisis={day}"),
        "/api/v1/operation/channels",
    )
    .await;
    assert_eq!(c, v["channelPerformance"]);
    let (s, e) = post_json(
        &server.url("/api/v1/operation"),
        &json!({ "date": "16/06/2025" }),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(e["message"], "Formato de fecha inválido. Usar YYYY-MM-DD.");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn productivity_contract_and_numbers() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let db = connect(url).await;
    let v = get_checked(
        &server,
        &doc,
        "/api/v1/productivity/?fecha_inicio=2025-06-01&fecha_fin=2025-06-30",
        "/api/v1/productivity",
    )
    .await;
    for p in v["dailyTrend"].as_array().unwrap() {
        expect_fields(
            p,
            &[
                ("day", 'i'),
                ("llamadas", 'i'),
                ("compromisos", 'i'),
                ("recupero", 'n'),
                ("hour", 'z'),
            ],
            "daily",
        );
    }
    for p in v["hourlyTrend"].as_array().unwrap() {
        expect_fields(
            p,
            &[("hour", 's'), ("llamadas", 'i'), ("compromisos", 'i')],
            "hourly",
        );
    }
    let ranking = v["agentRanking"].as_array().unwrap();
    assert!(!ranking.is_empty());
    for (i, a) in ranking.iter().enumerate() {
        expect_fields(
            a,
            &[
                ("id", 's'),
                ("rank", 'i'),
                ("agentName", 's'),
                ("calls", 'i'),
                ("directContacts", 'i'),
                ("commitments", 'i'),
                ("amountRecovered", 'n'),
                ("closingRate", 'n'),
                ("commitmentConversion", 'n'),
                ("quartile", 'i'),
            ],
            "AgentRankingRow",
        );
        assert_eq!(a["rank"], i as i64 + 1);
        let q = a["quartile"].as_i64().unwrap();
        assert!((1..=4).contains(&q));
    }
    assert!(
        ranking
            .windows(2)
            .all(|w| w[0]["calls"].as_i64() >= w[1]["calls"].as_i64())
    );
    assert_eq!(ranking[0]["quartile"], 1);
    assert_eq!(ranking.last().unwrap()["quartile"], 4);
    for h in v["agentHeatmap"].as_array().unwrap() {
        expect_fields(
            h,
            &[
                ("id", 's'),
                ("dni", 's'),
                ("agentName", 's'),
                ("dailyPerformance", 'o'),
            ],
            "heatmap",
        );
        for cell in h["dailyPerformance"].as_object().unwrap().values() {
            expect_fields(
                cell,
                &[
                    ("gestiones", 'I'),
                    ("contactosEfectivos", 'I'),
                    ("compromisos", 'I'),
                ],
                "cell",
            );
        }
    }
    expect_fields(
        &v["metadata"],
        &[
            ("period", 'o'),
            ("filters", 'o'),
            ("generated_at", 's'),
            ("execution_time_seconds", 'n'),
            ("total_agents", 'i'),
            ("query_count", 'i'),
            ("cache_status", 's'),
        ],
        "metadata",
    );
    let t = db
        .query_one(
            "SELECT sum(gestiones)::int8, sum(pdp)::int8, count(DISTINCT correo_agente) \
             FROM mart.productividad WHERE fecha BETWEEN '2025-06-01' AND '2025-06-30'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(v["totals"]["calls"], t.get::<_, i64>(0));
    assert_eq!(v["totals"]["commitments"], t.get::<_, i64>(1));
    assert_eq!(v["metadata"]["total_agents"], t.get::<_, i64>(2));
    let top = &ranking[0];
    let a = db
        .query_one(
            "SELECT sum(gestiones)::int8 FROM mart.productividad \
             WHERE fecha BETWEEN '2025-06-01' AND '2025-06-30' AND correo_agente = $1",
            &[&top["id"].as_str().unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(top["calls"], a.get::<_, i64>(0));

    // One agent: detail endpoint, POST filter; unknown agent → 404.
    let id = top["id"].as_str().unwrap();
    let d = get_checked(
        &server,
        &doc,
        &format!("/api/v1/productivity/agents/{id}?fecha_inicio=2025-06-01&fecha_fin=2025-06-30"),
        "/api/v1/productivity/agents/{agent_id}",
    )
    .await;
    assert_eq!(d["agentRanking"].as_array().unwrap().len(), 1);
    assert_eq!(d["agentRanking"][0]["calls"], top["calls"]);
    let p = post_checked(
        &server,
        &doc,
        "/api/v1/productivity",
        &json!({ "fecha_inicio": "2025-06-01", "fecha_fin": "2025-06-30", "agente": id }),
        "/api/v1/productivity",
    )
    .await;
    assert_eq!(p["agentRanking"], d["agentRanking"]);
    let (s, e) = get_json(&server.url(
        "/api/v1/productivity/agents/nadie@example.com?fecha_inicio=2025-06-01&fecha_fin=2025-06-30",
    ))
    .await;
    assert_eq!(s, 404);
    assert_eq!(e["message"], "Detalles del agente no encontrados.");
    let (s, e) =
        get_json(&server.url("/api/v1/productivity?fecha_inicio=2025-06-30&fecha_fin=2025-06-01"))
            .await;
    assert_eq!(s, 400);
    assert_eq!(
        e["message"],
        "La fecha de fin debe ser posterior a la fecha de inicio."
    );

    let agents = get_checked(
        &server,
        &doc,
        "/api/v1/productivity/agents?fecha_inicio=2025-06-01&fecha_fin=2025-06-30",
        "/api/v1/productivity/agents",
    )
    .await;
    for a in agents.as_array().unwrap() {
        expect_fields(
            a,
            &[
                ("id", 's'),
                ("nombre", 's'),
                ("dni", 's'),
                ("label", 's'),
                ("fechaInicio", 's'),
                ("fechaFin", 's'),
            ],
            "agent",
        );
    }
    let m = get_checked(
        &server,
        &doc,
        "/api/v1/productivity/metrics",
        "/api/v1/productivity/metrics",
    )
    .await;
    assert_eq!(
        m["trend_metrics"],
        json!(["llamadas", "compromisos", "recupero"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etl_status_contract() {
    let url = demo_db();
    let server = TestServer::start(config(url)).await;
    let doc = openapi(&server).await;
    let v = get_checked(&server, &doc, "/api/v1/etl/status", "/api/v1/etl/status").await;
    expect_fields(
        &v,
        &[
            ("status", 's'),
            ("last_updated", 'S'),
            ("total_tables", 'i'),
            ("successful_tables", 'i'),
            ("failed_tables", 'i'),
            ("running_extractions", 'i'),
            ("dashboard_tables", 'a'),
            ("recent_activity", 'a'),
        ],
        "ETLStatusResponse",
    );
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["failed_tables"], 0);
    assert!(
        v["dashboard_tables"]
            .as_array()
            .unwrap()
            .contains(&json!("trandeuda"))
    );
    for a in v["recent_activity"].as_array().unwrap() {
        expect_fields(
            a,
            &[
                ("table_name", 's'),
                ("status", 's'),
                ("timestamp", 's'),
                ("records", 'i'),
                ("duration", 'n'),
            ],
            "activity",
        );
    }
    let tr = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table_name"] == "trandeuda")
        .unwrap();
    assert_eq!(tr["kind"], "table");
    assert!(tr["watermark"].is_string(), "{tr}");
    assert_eq!(tr["fresh"], true);
    let t = get_checked(
        &server,
        &doc,
        "/api/v1/etl/status/table/trandeuda",
        "/api/v1/etl/status/table/{table_name}",
    )
    .await;
    expect_fields(
        &t,
        &[
            ("table_name", 's'),
            ("status", 's'),
            ("last_extracted", 'S'),
            ("records_count", 'I'),
            ("extraction_duration_seconds", 'N'),
            ("next_scheduled", 'S'),
            ("error_message", 'S'),
        ],
        "TableStatusResponse",
    );
    let (s, _) = get_json(&server.url("/api/v1/etl/status/table/nope")).await;
    assert_eq!(s, 404);

    let (s, r) = get_json(&server.url("/ready")).await;
    assert_eq!(s, 200);
    assert_eq!(r["status"], "ready", "{r}");
    let errors = schema_errors(&doc, response_schema(&doc, "/ready", "get"), &r);
    assert!(errors.is_empty(), "{errors:#?}");
    server.stop().await;
}
