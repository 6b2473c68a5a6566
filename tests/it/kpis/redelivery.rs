//! Issue 9: source rows delivered again — in another file on the same day or a later one —,
//! corrected, identical, or gone from a later delivery, for every raw table, checked through the
//! builds down to the marts. Each test starts from the base fixture of `tests/it/kpis.rs` (already
//! loaded and built), changes the source files as production does, runs the pipeline again
//! (incrementally) and checks the marts by hand-worked numbers, then that the incremental result
//! equals a full rebuild. docs/kpis.md ("Re-delivered, corrected and vanished source rows")
//! states the rule each test checks.

use super::*;

/// The base trandeuda CSV plus `extra` rows.
fn trandeuda_with(extra: &str) -> String {
    format!("{}{extra}", trandeuda_csv())
}

/// Defect 1: a debt snapshot delivered again in a second file on the same day counted its
/// documents twice. Within one snapshot day a document counts once, the latest delivery (greatest
/// creado_el, then file name) winning; a document missing from the later file keeps the earlier
/// delivery; a correction to 0 takes the document out of the snapshot; a correction that moves a
/// document to another account moves its debt and its payments.
#[tokio::test(flavor = "multi_thread")]
async fn trandeuda_redelivered_on_the_same_day_counts_each_document_once() {
    let f = fixture("kpi_redeliv_td").await;
    let c = &f.client;
    let d = f.dir.path();
    write(
        d,
        "trandeuda.csv",
        &trandeuda_with(
            "\
1001,F11,TD_2025-06-02_B.txt,2025-06-02,100.00,2025-06-02T15:00:00Z
1001,F12,TD_2025-06-02_B.txt,2025-06-02,70.00,2025-06-02T15:00:00Z
1001,F12,TD_2025-06-02_B.txt,2025-06-02,70.00,2025-06-02T15:00:00Z
1002,F21,TD_2025-06-02_B.txt,2025-06-02,200.00,2025-06-02T15:00:00Z
1003,F31,TD_2025-06-03_X.txt,2025-06-03,5.00,
1001,F11,TD_2025-06-05_B.txt,2025-06-05,0.00,2025-06-05T15:00:00Z
2002,F41,TD_2025-06-09_B.txt,2025-06-09,1000.00,2025-06-09T15:00:00Z
",
        ),
    );
    // A payment of F41 on 06-09: its account is the one of the latest delivery that day.
    write(
        d,
        "pagos.csv",
        &format!("{PAGOS}F41,2025-06-09,100.00,PAG_0609.txt,1,S1,2025-06-09T15:00:00Z\n"),
    );
    f.run(&[]);

    // Debt per account and snapshot day. 06-02: 1001 = F11 100.00 (both files agree) + F12 70.00
    // (the later file corrects 50.00); 1002 = F21 200.00 once; 1003 = F31 0.50 (not in the later
    // file: the earlier delivery stands). 06-03: F31's undated delivery loses to the dated one.
    // 06-05: F11 corrected to 0.00 → only F12 50.00. 06-09: F41 moved from 2001 to 2002.
    let deuda: Vec<(String, String, String, i32)> = c
        .query(
            "SELECT fecha::text, cuenta, deuda::text, documentos FROM aux.deuda_cuenta_dia
              WHERE (fecha, cuenta) IN (('2025-06-02', '1001'), ('2025-06-02', '1002'),
                                        ('2025-06-02', '1003'), ('2025-06-03', '1003'),
                                        ('2025-06-05', '1001'), ('2025-06-09', '2001'),
                                        ('2025-06-09', '2002'))
              ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let row =
        |f: &str, cu: &str, m: &str, n: i32| (f.to_string(), cu.to_string(), m.to_string(), n);
    assert_eq!(
        deuda,
        vec![
            row("2025-06-02", "1001", "170.00", 2),
            row("2025-06-02", "1002", "200.00", 1),
            row("2025-06-02", "1003", "0.50", 1),
            row("2025-06-03", "1003", "0.50", 1),
            row("2025-06-05", "1001", "50.00", 1),
            row("2025-06-09", "2002", "1300.00", 2),
        ]
    );

    // A's assigned debt (snapshot 06-02): 170.00 + 200.00 + 0.50 + 0 = 370.50 (not 720.50).
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(
        (a.deuda_asig.as_str(), a.deuda_act.as_str()),
        ("370.50", "150.50")
    );
    // A on 06-05: current debt 1001 50.00 + 1003 0.50 = 50.50; 1001 still gestionable.
    let a5 = dashboard(c, A, "2025-06-05").await;
    assert_eq!((a5.deuda_act.as_str(), a5.gestionables), ("50.50", 1));
    // A on 06-03: 1001 150.00 + 1002 200.00 + 1003 0.50.
    assert_eq!(dashboard(c, A, "2025-06-03").await.deuda_act, "350.50");
    // B on 06-09: F41 counted once, in 2002; 2001 is not in that snapshot (not gestionable).
    let b9 = dashboard(c, B, "2025-06-09").await;
    assert_eq!((b9.deuda_act.as_str(), b9.gestionables), ("1450.00", 2));
    // B on 06-10 (the next snapshot has F41 in 2001 again): the payment of F41 on 06-09 went to
    // 2002, the account of the latest delivery that day: paying accounts 1001, 2002;
    // recovery 340.00 + 100.00.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (
            b.deuda_act.as_str(),
            b.gestionables,
            b.recupero.as_str(),
            b.pagadoras,
            b.pagos
        ),
        ("1450.00", 3, "440.00", 2, 3)
    );
    // The assignment mart: TEMPRANA MOVIL = 1001 170.00 + 1003 0.50.
    let asig: String = c
        .query_one(
            "SELECT deuda_asig::text FROM mart.asignacion
              WHERE periodo = '2025-06' AND cartera = 'TEMPRANA' AND servicio = 'MOVIL'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(asig, "170.50");

    assert_equals_full_rebuild(&f).await;
}

/// Defect 4: two identical payments in one delivery file are two payments (their occurrence
/// within the file tells them apart); the same file content delivered again in another file, on
/// the same day or a later one, is the same payments — even when the later file carries fewer
/// of them.
#[tokio::test(flavor = "multi_thread")]
async fn identical_payments_in_one_file_are_each_counted_and_redeliveries_are_not() {
    let f = fixture("kpi_redeliv_pag").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "pagos.csv",
        &format!(
            "{PAGOS}\
F12,2025-06-05,25.00,PAG_0605.txt,1,S1,2025-06-05T15:00:00Z
F12,2025-06-05,25.00,PAG_0605.txt,2,S1,2025-06-05T15:00:00Z
F12,2025-06-05,25.00,PAG_0605_B.txt,1,S1,2025-06-05T18:00:00Z
F12,2025-06-05,25.00,PAG_0605_B.txt,2,S1,2025-06-05T18:00:00Z
F12,2025-06-05,25.00,PAG_0606.txt,1,S1,2025-06-06T15:00:00Z
"
        ),
    );
    f.run(&[]);

    // B on 06-10: 340.00 + 2 × 25.00 = 390.00 in 4 payments; 1001 paid 40.00 + 50.00 on 06-05.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (b.recupero.as_str(), b.pagos, b.pagadoras),
        ("390.00", 4, 2)
    );
    let dia: (String, i32) = c
        .query_one(
            "SELECT monto::text, pagos FROM aux.pago_diario
              WHERE fecha = '2025-06-05' AND archivo = $1 AND cuenta = '1001'",
            &[&B],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(dia, ("90.00".to_string(), 3));

    // F12 (account 1001) paid 25.00 twice on 06-05: two payments, attributed to B (opened last).
    let pagos: Vec<(i32, i32, String, String, Option<String>)> = c
        .query(
            "SELECT ocurrencia, entregas, primer_archivo, ultimo_archivo, archivo FROM aux.pago
              WHERE nro_documento = 'F12' ORDER BY ocurrencia",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    assert_eq!(
        pagos,
        vec![
            (
                1,
                3,
                "PAG_0605.txt".into(),
                "PAG_0606.txt".into(),
                Some(B.to_string())
            ),
            (
                2,
                2,
                "PAG_0605.txt".into(),
                "PAG_0605_B.txt".into(),
                Some(B.to_string())
            ),
        ]
    );
    assert_equals_full_rebuild(&f).await;
}

/// The days a build reported in the latest run (None: it did not run).
async fn changed_days(c: &Client, node: &str) -> Option<Vec<String>> {
    let row = c
        .query_opt(
            "SELECT details->'changed_days' FROM pulso_flow.node_runs
              WHERE run_id = (SELECT max(run_id) FROM pulso_flow.runs) AND node = $1
                AND (details->>'ran')::boolean",
            &[&node],
        )
        .await
        .unwrap()?;
    let days: serde_json::Value = row.get(0);
    Some(
        days.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
    )
}

/// (cuentas, gestionadas, cd, ci, sc, sg, pdp) of a dashboard total.
fn contact(t: &Totals) -> (i64, i64, i64, i64, i64, i64, i64) {
    (t.cuentas, t.gestionadas, t.cd, t.ci, t.sc, t.sg, t.pdp)
}

/// (gestiones, ce, cne, pdp, bot, humano) of a dashboard total.
fn interactions(t: &Totals) -> (i64, i64, i64, i64, i64, i64) {
    (
        t.gestiones,
        t.gestiones_ce,
        t.gestiones_cne,
        t.gestiones_pdp,
        t.gestiones_bot,
        t.gestiones_humano,
    )
}

/// Payments: the same payment delivered again (its attributes corrected, or without a load
/// time), an exact duplicate line, a payment missing from a later file, and a later file that
/// changes a payment's amount — which, without a payment id in the source, is another payment.
#[tokio::test(flavor = "multi_thread")]
async fn payments_redelivered_corrected_or_missing_from_a_later_file() {
    let f = fixture("kpi_audit_pagos").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "pagos.csv",
        &format!(
            "{PAGOS}\
F11,2025-06-05,40.00,PAG_0606.txt,1,S9,2025-06-06T15:00:00Z
F11,2025-06-05,45.00,PAG_0607.txt,1,S1,2025-06-07T15:00:00Z
F11,2025-06-03,10.00,PAG_0603.txt,1,S1,2025-06-03T15:00:00Z
F51,2025-06-09,300.00,PAG_0610.txt,1,S7,
"
        ),
    );
    f.run(&[]);

    let pagos: Vec<(
        String,
        String,
        i32,
        String,
        String,
        Option<String>,
        Option<String>,
    )> = c
        .query(
            "SELECT nro_documento, monto_cancelado::text, entregas, primer_archivo, ultimo_archivo,
                    cod_sistema, archivo
               FROM aux.pago WHERE nro_documento IN ('F11', 'F51', 'F21')
              ORDER BY fecha_pago, nro_documento, monto_cancelado",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let p = |d: &str, m: &str, n: i32, first: &str, last: &str, sis: &str, camp: &str| {
        (
            d.to_string(),
            m.to_string(),
            n,
            first.to_string(),
            last.to_string(),
            Some(sis.to_string()),
            Some(camp.to_string()),
        )
    };
    assert_eq!(
        pagos,
        vec![
            // P3: its exact duplicate line is the same raw row.
            p("F11", "10.00", 1, "PAG_0603.txt", "PAG_0603.txt", "S1", A),
            // P1: not in PAG_0607.txt, still one payment delivered in three files.
            p("F21", "200.00", 3, "PAG_0604.txt", "PAG_0606.txt", "S2", A),
            // P2 delivered again on 06-06 with another cod_sistema: the latest delivery's.
            p("F11", "40.00", 2, "PAG_0605.txt", "PAG_0606.txt", "S9", B),
            // The same document and date with another amount: another payment.
            p("F11", "45.00", 1, "PAG_0607.txt", "PAG_0607.txt", "S1", B),
            // P6 delivered again without a load time: it loses to the dated delivery.
            p("F51", "300.00", 2, "PAG_0609.txt", "PAG_0609.txt", "S1", B),
        ]
    );
    // Only the payments of 06-05 changed (P2's attributes, the new 45.00) — P6's row did not
    // change visibly except its delivery count, so 06-09 too.
    assert_eq!(
        changed_days(c, "pago").await,
        Some(vec!["2025-06-05".to_string(), "2025-06-09".to_string()])
    );
    // B on 06-10: 340.00 + 45.00 in 3 payments; A unchanged (P3 once: 10.00 + P1 200.00).
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (b.recupero.as_str(), b.pagos, b.pagadoras),
        ("385.00", 3, 2)
    );
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!((a.recupero.as_str(), a.pagos), ("210.00", 2));

    assert_equals_full_rebuild(&f).await;
}

/// Assignments: the same file delivered again the same day with a correction (same key: the
/// later load wins), again on a later day with a corrected attribute and without some of its
/// accounts (they stay), an exact duplicate line, an account id spelled with leading zeros, and
/// a corrected client.
#[tokio::test(flavor = "multi_thread")]
async fn assignments_redelivered_corrected_or_missing_from_a_later_delivery() {
    let f = fixture("kpi_audit_asig").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "asignaciones.csv",
        &format!(
            "{ASIGNACIONES}\
502,1003,FIX_TEMPRANA_A.txt,2025-06-01,movil,T7,2025-05-09,2025-06-01T18:00:00Z
504,2001,FIX_AN_B.txt,2025-06-05,FIJA,T1,2025-05-17,2025-06-05T12:00:00Z
504,2001,FIX_AN_B.txt,2025-06-05,FIJA,T1,2025-05-17,2025-06-05T12:00:00Z
505,1004,FIX_TEMPRANA_A.txt,2025-06-04,HOGAR,T2,,2025-06-04T12:00:00Z
502,02002,FIX_AN_B.txt,2025-06-06,FIJA,T1,2025-05-17,2025-06-06T12:00:00Z
"
        ),
    );
    f.run(&[]);

    let universo: Vec<(String, String, String, String, i32, String, String)> = c
        .query(
            "SELECT archivo, cuenta, cod_luna, fecha_asignacion::text, entregas, tramo, servicio
               FROM aux.cuenta_campana ORDER BY archivo, cuenta",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let u = |a: &str, cu: &str, cl: &str, d: &str, n: i32, t: &str, s: &str| {
        (
            a.to_string(),
            cu.to_string(),
            cl.to_string(),
            d.to_string(),
            n,
            t.to_string(),
            s.to_string(),
        )
    };
    assert_eq!(
        universo,
        vec![
            // 1001 and 2002 are not in B's 06-05 delivery: they stay. 02002 is 2002.
            u(B, "1001", "501", "2025-06-03", 1, "T1", "MOVIL"),
            u(B, "2001", "504", "2025-06-03", 2, "T1", "FIJA"),
            u(B, "2002", "502", "2025-06-03", 2, "T1", "FIJA"),
            u(A, "1001", "501", "2025-06-01", 1, "T1", "MOVIL"),
            u(A, "1002", "501", "2025-06-01", 2, "T9", "FIJA"),
            // The same key loaded again at 18:00: one row, the later tramo.
            u(A, "1003", "502", "2025-06-01", 1, "T7", "MOVIL"),
            // Client corrected by the 06-04 delivery; first assigned 06-01.
            u(A, "1004", "505", "2025-06-01", 2, "T2", "FIJA"),
        ]
    );
    // A on 06-06: G5 is client 503's interaction, and 1004 now belongs to 505: 1004 is not
    // managed and G5 links no campaign. Clients 501, 502, 505.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!((a.cuentas, a.clientes), (4, 3));
    assert_eq!(contact(&a), (4, 3, 2, 1, 0, 1, 0));
    assert_eq!(interactions(&a), (2, 1, 0, 0, 2, 0));
    let g5: String = c
        .query_one(
            "SELECT archivo FROM mart.operacion WHERE fecha = '2025-06-06' AND hora = 23",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(g5, "SIN_CAMPANA");
    // B on 06-10: the same three accounts; 2001 moved to FIJA.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(contact(&b), (3, 3, 2, 1, 0, 0, 1));
    let by_servicio: Vec<(String, i64)> = c
        .query(
            "SELECT servicio, sum(cuentas)::int8 FROM mart.dashboard
              WHERE archivo = $1 AND fecha_foto = '2025-06-10' GROUP BY 1 ORDER BY 1",
            &[&B],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(by_servicio, vec![("FIJA".into(), 2), ("MOVIL".into(), 1)]);
    let asig: Vec<(String, String, i32, i32, String)> = c
        .query(
            "SELECT cartera, servicio, cuentas, clientes, deuda_asig::text FROM mart.asignacion
              WHERE periodo = '2025-06' ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let q =
        |ca: &str, s: &str, cu, cl, d: &str| (ca.to_string(), s.to_string(), cu, cl, d.to_string());
    assert_eq!(
        asig,
        vec![
            q("ALTAS_NUEVAS", "FIJA", 2, 2, "1300.00"),
            q("ALTAS_NUEVAS", "MOVIL", 1, 1, "150.00"),
            q("TEMPRANA", "FIJA", 2, 1, "200.00"),
            q("TEMPRANA", "MOVIL", 2, 2, "150.50"),
        ]
    );

    assert_equals_full_rebuild(&f).await;
}

/// The calendar: a period row removed at the source (the table is read whole, so it leaves raw),
/// a corrected closing date and reference snapshot, and an exact duplicate line.
#[tokio::test(flavor = "multi_thread")]
async fn calendar_rows_corrected_or_removed_at_the_source() {
    let f = fixture("kpi_audit_cal").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "calendario.csv",
        "\
archivo,periodo_date,tipo_cartera,fecha_apertura,fecha_trandeuda,fecha_cierre,fecha_cierre_planificada
FIX_TEMPRANA_A,2025-06-01,TEMPRANA,2025-06-02,2025-06-05,2025-06-06,2025-06-06
FIX_TEMPRANA_A,2025-06-01,TEMPRANA,2025-06-02,2025-06-05,2025-06-06,2025-06-06
FIX_AN_B,2025-06-01,ALTAS NUEVAS,2025-06-04,2025-06-04,2025-06-09,2025-06-10
",
    );
    f.run(&[]);

    let camp: Vec<(String, Option<String>, Option<String>, i32)> = c
        .query(
            "SELECT archivo, fecha_cierre::text, fecha_trandeuda::text, periodos FROM aux.campana ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        camp,
        vec![
            (
                B.to_string(),
                Some("2025-06-09".to_string()),
                Some("2025-06-04".to_string()),
                1
            ),
            (
                A.to_string(),
                Some("2025-06-06".to_string()),
                Some("2025-06-05".to_string()),
                1
            ),
        ]
    );
    // B ends on 06-09: no photo on 06-10; its last photo keeps every account and payment.
    assert_eq!(dashboard(c, B, "2025-06-10").await.cuentas, 0);
    let b = dashboard(c, B, "2025-06-09").await;
    assert_eq!(contact(&b), (3, 3, 2, 1, 0, 0, 1));
    assert_eq!((b.recupero.as_str(), b.pagos), ("340.00", 2));
    let evo: Vec<String> = c
        .query(
            "SELECT DISTINCT fecha_foto::text FROM mart.evolucion WHERE archivo = $1 ORDER BY 1",
            &[&B],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        evo,
        vec!["2025-06-04", "2025-06-05", "2025-06-06", "2025-06-09"]
    );
    // A's reference snapshot is now 06-05, where 1002 had paid off: assigned debt 1001 150.00 +
    // 1003 0.50; 1002's bracket is SIN_DEUDA.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(a.deuda_asig, "150.50");
    let r: (String, String) = c
        .query_one(
            "SELECT fecha_snapshot_asignacion::text, rango_deuda FROM aux.cuenta_campana
              WHERE archivo = $1 AND cuenta = '1002'",
            &[&A],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(r, ("2025-06-05".to_string(), "SIN_DEUDA".to_string()));
    let fija: String = c
        .query_one(
            "SELECT deuda_asig::text FROM mart.asignacion
              WHERE periodo = '2025-06' AND cartera = 'TEMPRANA' AND servicio = 'FIJA'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(fija, "0.00");

    assert_equals_full_rebuild(&f).await;
}

/// Bot interactions: one corrected (its code), one moved to another day, one delivered twice,
/// one missing from the later delivery (an incremental load never deletes: it stays), and one
/// without a client.
#[tokio::test(flavor = "multi_thread")]
async fn bot_interactions_redelivered_corrected_moved_or_missing() {
    let f = fixture("kpi_audit_bot").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "voicebot.csv",
        "\
uid,document,date,fecha_gestion,management,sub_management,compromiso,campaign_name
G1,501,2025-06-02 10:00:00,2025-06-02,CONTESTA,,,COLA1
G1,501,2025-06-02 10:00:00,2025-06-02,CONTESTA,,,COLA1
G2,0502,2025-06-03 09:00:00,2025-06-03,CONTESTA,,,COLA1
G5,503,2025-06-06 23:30:00,2025-06-06,CONTESTA,PROMESA,SI,COLA2
G7,501,2025-06-04 08:00:00,2025-06-04,NOPE,X,,COLA1
G8,501,2025-06-05 09:00:00,2025-06-05, contesta ,,,COLA1
G11,,2025-06-05 10:00:00,2025-06-05,CONTESTA,,,COLA1
",
    );
    f.run(&[]);

    // G2 (BUZON → CONTESTA) makes 1003 a direct contact from 06-03 on; it beats G3 (CNE 40).
    let a3 = dashboard(c, A, "2025-06-03").await;
    assert_eq!(contact(&a3), (4, 3, 3, 0, 0, 1, 0));
    assert_eq!(interactions(&a3), (2, 2, 0, 0, 2, 0));
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(contact(&a), (4, 4, 4, 0, 0, 0, 1));
    assert_eq!(interactions(&a), (3, 3, 0, 1, 3, 0));
    // G7 moved to 06-04, B's first day: it counts in B (opened last) from 06-04 on.
    let b4 = dashboard(c, B, "2025-06-04").await;
    assert_eq!(contact(&b4), (3, 1, 0, 0, 1, 2, 0));
    assert_eq!(interactions(&b4), (1, 0, 0, 0, 1, 0));
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(contact(&b), (3, 3, 2, 1, 0, 0, 1));
    assert_eq!(interactions(&b), (5, 2, 1, 1, 2, 3));
    // The operation: G6 (not in the later file) stays; G11 has no client; G8 is now client
    // 501's first attempt of 06-05.
    let op: Vec<(String, i32, i32, String, i32)> = c
        .query(
            "SELECT fecha::text, hora, intento, archivo, gestiones FROM mart.operacion
              WHERE canal = 'BOT' AND fecha IN ('2025-06-04', '2025-06-05') ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let o = |d: &str, h, i, a: &str| (d.to_string(), h, i, a.to_string(), 1);
    assert_eq!(
        op,
        vec![
            o("2025-06-04", 8, 1, B),
            o("2025-06-04", 12, 1, "SIN_CAMPANA"),
            o("2025-06-05", 9, 1, B),
            o("2025-06-05", 10, 1, "SIN_CAMPANA"),
        ]
    );
    let total: i64 = c
        .query_one("SELECT sum(gestiones)::int8 FROM mart.operacion", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 10);
    // The move is exact: gestion rebuilt the day G7 left and the day it reached, and the new
    // and corrected days.
    assert_eq!(
        changed_days(c, "gestion").await,
        Some(vec![
            "2025-06-03".to_string(),
            "2025-06-04".to_string(),
            "2025-06-05".to_string()
        ])
    );

    assert_equals_full_rebuild(&f).await;
}

/// Agent interactions: a corrected promised amount, a corrected agent, one delivered twice, one
/// missing from the later delivery (it stays).
#[tokio::test(flavor = "multi_thread")]
async fn agent_interactions_redelivered_corrected_or_missing() {
    let f = fixture("kpi_audit_human").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "mibotair.csv",
        "\
uid,document,date,fecha_gestion,n1,n2,n3,correo_agente,nombre_agente,monto_compromiso,campaign_name
G4,504,2025-06-06 15:00:00,2025-06-06,Contacto_Efectivo,Titular,Promesa,ana@x.pe,ana,450.00,CALL1
G4,504,2025-06-06 15:00:00,2025-06-06,Contacto_Efectivo,Titular,Promesa,ana@x.pe,ana,450.00,CALL1
G9,504,2025-06-09 10:00:00,2025-06-09,No_Contacto,No contesta,,ana@x.pe,ana,,CALL1
",
    );
    f.run(&[]);

    let prod: Vec<(String, String, String, String, i32, i32, i32, String)> = c
        .query(
            "SELECT fecha::text, correo_agente, nombre_agente, documento_agente, gestiones,
                    contactos_no_efectivos, pdp, monto_compromiso::text
               FROM mart.productividad ORDER BY fecha",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
            )
        })
        .collect();
    let p = |d: &str, g, cne, pdp, m: &str| {
        (
            d.to_string(),
            "ana@x.pe".to_string(),
            "Ana".to_string(),
            "111".to_string(),
            g,
            cne,
            pdp,
            m.to_string(),
        )
    };
    assert_eq!(
        prod,
        vec![
            // G3 is not in the later file: it stays.
            p("2025-06-05", 1, 1, 0, "0.00"),
            p("2025-06-06", 1, 0, 1, "450.00"),
            // G9's agent corrected to ana.
            p("2025-06-09", 1, 0, 0, "0.00"),
        ]
    );
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(contact(&b), (3, 3, 2, 1, 0, 0, 1));
    assert_eq!(interactions(&b), (5, 2, 1, 1, 2, 3));

    assert_equals_full_rebuild(&f).await;
}

/// Bot homologation (read whole): a rule corrected, a rule removed at the source (its
/// interactions become SIN_HOMOLOGAR), a rule that collides with another once normalised (the
/// heavier wins) and an exact duplicate line.
#[tokio::test(flavor = "multi_thread")]
async fn bot_homologation_rules_corrected_removed_or_colliding() {
    let f = fixture("kpi_audit_hvb").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "homologacion_voicebot.csv",
        "\
bot_management,bot_sub_management,bot_compromiso,contactabilidad_homologada,es_pdp_homologado,peso_homologado
CONTESTA,,,Contacto Efectivo,0,50
CONTESTA,,,Contacto Efectivo,0,50
contesta ,,,Contacto No Efectivo,0,20
TERCERO,,,Contacto No Efectivo,0,40
BUZON,,,Contacto No Efectivo,0,30
",
    );
    f.run(&[]);

    let clases: Vec<(String, String, i32)> = c
        .query(
            "SELECT gestion_uid, clase_contacto, peso FROM aux.gestion WHERE canal = 'BOT' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let g = |u: &str, k: &str, p| (u.to_string(), k.to_string(), p);
    assert_eq!(
        clases,
        vec![
            g("G1", "CONTACTO_EFECTIVO", 50),
            g("G2", "CONTACTO_NO_EFECTIVO", 30),
            g("G5", "SIN_HOMOLOGAR", 0),
            g("G6", "CONTACTO_EFECTIVO", 50),
            g("G7", "SIN_HOMOLOGAR", 0),
            g("G8", "CONTACTO_EFECTIVO", 50),
        ]
    );
    // A on 06-06: 1003 indirect (G2, then G3), 1004 managed without contact (G5 unmatched, no
    // promise any more). Interactions G1 (CE), G2 (CNE), G5.
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(contact(&a), (4, 4, 2, 1, 1, 0, 0));
    assert_eq!(interactions(&a), (3, 1, 1, 0, 3, 0));
    let a3 = dashboard(c, A, "2025-06-03").await;
    assert_eq!(contact(&a3), (4, 3, 2, 1, 0, 1, 0));

    assert_equals_full_rebuild(&f).await;
}

/// Agent homologation (read whole): a rule corrected, a rule removed at the source, an exact
/// duplicate line.
#[tokio::test(flavor = "multi_thread")]
async fn agent_homologation_rules_corrected_or_removed() {
    let f = fixture("kpi_audit_hma").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "homologacion_mibotair.csv",
        "\
n_1,n_2,n_3,peso,contactabilidad,pdp
Contacto_Efectivo,Titular,Promesa,100,Contacto Efectivo,SI
Contacto_Efectivo,Titular,Promesa,100,Contacto Efectivo,SI
Contacto_No_Efectivo,Tercero,,40,Contacto Efectivo,NO
",
    );
    f.run(&[]);

    // G3 is now an effective contact: 2002 (B) and 1003 (A) direct; G9 unmatched.
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(contact(&b), (3, 3, 3, 0, 0, 0, 1));
    assert_eq!(interactions(&b), (5, 3, 0, 1, 2, 3));
    let a = dashboard(c, A, "2025-06-06").await;
    assert_eq!(contact(&a), (4, 4, 4, 0, 0, 0, 1));
    let op: (i32, i32) = c
        .query_one(
            "SELECT sin_homologar, no_contactos FROM mart.operacion WHERE fecha = '2025-06-09'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(op, (1, 0));
    let ce: i32 = c
        .query_one(
            "SELECT contactos_efectivos FROM mart.productividad WHERE fecha = '2025-06-05'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ce, 1);

    assert_equals_full_rebuild(&f).await;
}

/// Agents (read whole): one removed at the source (its interactions keep the source's name and
/// SIN_DNI), one added, an exact duplicate line.
#[tokio::test(flavor = "multi_thread")]
async fn agents_added_or_removed_at_the_source() {
    let f = fixture("kpi_audit_ejec").await;
    let c = &f.client;
    write(
        f.dir.path(),
        "ejecutivos.csv",
        "\
correo_name,document,nombre
otro@x.pe,222,Otro Ejecutivo
otro@x.pe,222,Otro Ejecutivo
",
    );
    f.run(&[]);

    let prod: Vec<(String, String, String, String)> = c
        .query(
            "SELECT fecha::text, correo_agente, nombre_agente, documento_agente
               FROM mart.productividad ORDER BY fecha",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let p = |d: &str, e: &str, n: &str, doc: &str| {
        (d.to_string(), e.to_string(), n.to_string(), doc.to_string())
    };
    assert_eq!(
        prod,
        vec![
            p("2025-06-05", "ana@x.pe", "ana", "SIN_DNI"),
            p("2025-06-06", "ana@x.pe", "ana", "SIN_DNI"),
            p("2025-06-09", "otro@x.pe", "Otro Ejecutivo", "222"),
        ]
    );

    assert_equals_full_rebuild(&f).await;
}

/// (cuenta, fecha_snapshot, archivo, motivo_no_atribuido) of the one payment of a document.
async fn pago(
    c: &Client,
    doc: &str,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let r = c
        .query_one(
            "SELECT cuenta, fecha_snapshot::text, archivo, motivo_no_atribuido FROM aux.pago
              WHERE nro_documento = $1",
            &[&doc],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

/// A payment's attribution depends on data that may arrive after it: its document in an earlier
/// snapshot than the one it was found in, its account in a campaign's universe. Both reach the
/// stored payment (and the incremental result stays equal to a full rebuild).
#[tokio::test(flavor = "multi_thread")]
async fn payments_are_reattributed_when_their_document_or_account_arrives_later() {
    let f = fixture("kpi_audit_reatt").await;
    let c = &f.client;
    let d = f.dir.path();
    let s = |x: &str| Some(x.to_string());

    // F71 is first seen in the 06-09 snapshot (account 2002), paid on 06-05: attributed by the
    // first snapshot after the payment. F81 belongs to 3001, an account no campaign has.
    let trandeuda = trandeuda_with(
        "\
2002,F71,TD_2025-06-09.txt,2025-06-09,80.00,2025-06-09T12:00:00Z
3001,F81,TD_2025-06-02.txt,2025-06-02,60.00,2025-06-02T12:00:00Z
",
    );
    write(d, "trandeuda.csv", &trandeuda);
    let pagos = format!(
        "{PAGOS}\
F71,2025-06-05,80.00,PAG_0605.txt,1,S1,2025-06-05T15:00:00Z
F81,2025-06-03,60.00,PAG_0603.txt,1,S1,2025-06-03T15:00:00Z
"
    );
    write(d, "pagos.csv", &pagos);
    f.run(&[]);
    assert_eq!(
        pago(c, "F71").await,
        (s("2002"), s("2025-06-09"), s(B), None)
    );
    assert_eq!(
        pago(c, "F81").await,
        (s("3001"), s("2025-06-02"), None, s("CUENTA_NO_ASIGNADA"))
    );

    // Later the 06-07 snapshot gets a correction file with F71 in 2001 (after the payment date,
    // before 06-09): the first snapshot after the payment now says 2001.
    write(
        d,
        "trandeuda.csv",
        &format!("{trandeuda}2001,F71,TD_2025-06-07_B.txt,2025-06-07,80.00,2025-06-07T15:00:00Z\n"),
    );
    f.run(&[]);
    assert_eq!(
        pago(c, "F71").await,
        (s("2001"), s("2025-06-07"), s(B), None)
    );
    // Then 3001 is assigned to B on 06-05, after its payment of 06-03: outside B's window now.
    write(
        d,
        "asignaciones.csv",
        &format!(
            "{ASIGNACIONES}506,3001,FIX_AN_B.txt,2025-06-05,MOVIL,T1,2025-05-17,2025-06-05T12:00:00Z\n"
        ),
    );
    f.run(&[]);
    assert_eq!(
        pago(c, "F81").await,
        (s("3001"), s("2025-06-02"), None, s("FUERA_DE_VENTANA"))
    );
    // B on 06-10: 4 accounts (3001 from 06-05), paying 1001, 2002 and now 2001 (F71).
    let b = dashboard(c, B, "2025-06-10").await;
    assert_eq!(
        (b.cuentas, b.pagadoras, b.recupero.as_str()),
        (4, 3, "420.00")
    );

    // Both changes below happen on 06-08 or later, after the payments' dates (06-03): the
    // build reaches the stored unattributed payments through their reason, not their date.
    // F91 (paid 06-03) has no snapshot until the 06-09 one puts it in 2002, and 3001 joins A
    // (open on 06-03) in a file of 06-08.
    write(
        d,
        "pagos.csv",
        &format!("{pagos}F91,2025-06-03,30.00,PAG_0603.txt,1,S1,2025-06-03T15:00:00Z\n"),
    );
    f.run(&[]);
    assert_eq!(
        pago(c, "F91").await,
        (None, None, None, s("DOCUMENTO_SIN_CUENTA"))
    );
    write(
        d,
        "trandeuda.csv",
        &format!(
            "{trandeuda}2001,F71,TD_2025-06-07_B.txt,2025-06-07,80.00,2025-06-07T15:00:00Z\n\
             2002,F91,TD_2025-06-09_B.txt,2025-06-09,30.00,2025-06-09T15:00:00Z\n"
        ),
    );
    f.run(&[]);
    let f91 = pago(c, "F91").await;
    assert_eq!((&f91.0, &f91.1), (&s("2002"), &s("2025-06-09")), "{f91:?}");
    assert_ne!(f91.3, s("DOCUMENTO_SIN_CUENTA"));
    write(
        d,
        "asignaciones.csv",
        &format!(
            "{ASIGNACIONES}506,3001,FIX_AN_B.txt,2025-06-05,MOVIL,T1,2025-05-17,2025-06-05T12:00:00Z\n\
             506,3001,FIX_TEMPRANA_A.txt,2025-06-08,MOVIL,T1,2025-05-17,2025-06-08T12:00:00Z\n"
        ),
    );
    f.run(&[]);
    assert_eq!(
        pago(c, "F81").await,
        (s("3001"), s("2025-06-02"), s(A), None)
    );

    assert_equals_full_rebuild(&f).await;
}
