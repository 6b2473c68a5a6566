//! Issue 9: source rows delivered again — in another file on the same day or a later one —,
//! corrected, identical, or gone from a later delivery, for every raw table, checked through the
//! builds down to the marts. Each test starts from the base fixture of `tests/kpis.rs` (already
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
