//! SQL over the mart tables. Statements are text built from the configured schema name (validated
//! as a plain identifier at startup) and from static column names chosen by enums — never from
//! request text; every value is a bound parameter (`$n`). Each statement's access path is an
//! index the migrations create (see `tests/api_explain.rs`):
//!
//! | statement | index |
//! |---|---|
//! | dashboard, filter options, latest photo | `mart.dashboard` primary key (fecha_foto, …) |
//! | evolution | `mart.evolucion` primary key (fecha_foto, …) |
//! | evolution carteras | `evolucion_cartera` (cartera, dia_gestion), loose index scan |
//! | assignment | `mart.asignacion` primary key (periodo, …) |
//! | operation | `mart.operacion` primary key (fecha, …) |
//! | productivity | `mart.productividad` primary key (fecha, …); one agent: `productividad_agente` |

use crate::routes::dashboard::{COUNTER_SQL, Dimension};

#[derive(Clone, Debug)]
pub struct Sql {
    pub schema: String,
    pub latest_photo: String,
    pub campaigns: String,
    pub filter_options: String,
    pub evolution: String,
    pub carteras: String,
    pub assignment: String,
    pub latest_month: String,
    pub latest_photo_in: String,
    pub latest_operation: String,
    pub operation: String,
    pub latest_productivity: String,
    pub productivity: String,
    pub productivity_hourly: String,
    pub agents: String,
}

impl Sql {
    pub fn new(schema: &str) -> Self {
        let m = schema;
        Sql {
            schema: schema.to_string(),
            latest_photo: format!(
                "SELECT coalesce((SELECT max(fecha_foto) FROM {m}.dashboard WHERE fecha_foto < $1), \
                                 (SELECT max(fecha_foto) FROM {m}.dashboard))"
            ),
            campaigns: "SELECT archivo, fecha_apertura, fecha_cierre, duracion_dias_habiles \
                        FROM aux.campana WHERE archivo = ANY($1::text[])"
                .into(),
            filter_options: format!(
                "SELECT k, v FROM (SELECT cartera, servicio, periodo, tramo, \
                        dia_vencimiento::text AS dv, rango_deuda \
                   FROM {m}.dashboard WHERE fecha_foto = $1) d \
                 CROSS JOIN LATERAL (VALUES ('cartera', cartera), ('servicio', servicio), \
                        ('periodo', periodo), ('tramo', tramo), ('dia_vencimiento', dv), \
                        ('rango_deuda', rango_deuda)) AS x(k, v) \
                 GROUP BY k, v \
                 UNION SELECT 'periodo', periodo FROM {m}.asignacion GROUP BY periodo \
                 ORDER BY 1, 2"
            ),
            // Series key ($6 picks the column), summed per management day.
            evolution: format!(
                "SELECT serie, dia_gestion, \
                        sum(cuentas)::float8, sum(cuentas_gestionadas)::float8, \
                        sum(cuentas_cd)::float8, sum(cuentas_ci)::float8, sum(cuentas_sc)::float8, \
                        sum(cuentas_pdp)::float8, sum(cuentas_pagadoras)::float8, \
                        sum(recupero)::float8, sum(gestiones)::float8, sum(gestiones_ce)::float8, \
                        sum(gestiones_pdp)::float8, sum(deuda_asig)::float8, \
                        GROUPING(serie)::int4 \
                 FROM (SELECT CASE $6::text WHEN 'servicio' THEN servicio \
                                            WHEN 'periodo' THEN periodo \
                                            WHEN 'archivo' THEN archivo \
                                            ELSE cartera END AS serie, * \
                         FROM {m}.evolucion \
                        WHERE fecha_foto BETWEEN $1 AND $2 \
                          AND (cardinality($3::text[]) = 0 OR cartera = ANY($3::text[])) \
                          AND (cardinality($4::text[]) = 0 OR servicio = ANY($4::text[])) \
                          AND (cardinality($5::text[]) = 0 OR periodo = ANY($5::text[]))) e \
                 GROUP BY GROUPING SETS ((serie, dia_gestion), (dia_gestion)) \
                 ORDER BY 15, 1, 2"
            ),
            // Distinct carteras by a loose index scan over evolucion_cartera (cartera, dia_gestion).
            carteras: format!(
                "WITH RECURSIVE c AS ( \
                   (SELECT cartera FROM {m}.evolucion ORDER BY cartera LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT e.cartera FROM {m}.evolucion e WHERE e.cartera > c.cartera \
                           ORDER BY e.cartera LIMIT 1) FROM c WHERE c.cartera IS NOT NULL) \
                 SELECT cartera FROM c WHERE cartera IS NOT NULL"
            ),
            assignment: format!(
                "SELECT periodo, cartera, sum(cuentas)::float8, sum(clientes)::float8, \
                        sum(deuda_asig)::float8, sum(deuda_act)::float8 \
                 FROM {m}.asignacion \
                 WHERE periodo = ANY($1::text[]) \
                   AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
                   AND (cardinality($3::text[]) = 0 OR servicio = ANY($3::text[])) \
                 GROUP BY periodo, cartera ORDER BY periodo, cartera"
            ),
            latest_month: format!(
                "SELECT coalesce((SELECT max(periodo) FROM {m}.asignacion WHERE periodo <= $1), \
                                 (SELECT max(periodo) FROM {m}.asignacion))"
            ),
            latest_photo_in: format!(
                "SELECT max(fecha_foto) FROM {m}.dashboard WHERE fecha_foto BETWEEN $1 AND $2"
            ),
            latest_operation: format!(
                "SELECT coalesce((SELECT max(fecha) FROM {m}.operacion WHERE fecha <= $1), \
                                 (SELECT max(fecha) FROM {m}.operacion))"
            ),
            // One scan of the day: per channel, hour, attempt, queue, and the day's total.
            operation: format!(
                "SELECT GROUPING(canal, hora, intento, cola)::int4, canal, hora, intento, cola, \
                        sum(gestiones)::int8, sum(contactos_efectivos)::int8, \
                        sum(contactos_no_efectivos)::int8, sum(pdp)::int8, \
                        sum(duracion_total)::int8 \
                 FROM {m}.operacion \
                 WHERE fecha = $1 \
                   AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
                 GROUP BY GROUPING SETS ((canal), (hora), (intento), (cola), ())"
            ),
            latest_productivity: format!(
                "SELECT coalesce((SELECT max(fecha) FROM {m}.productividad WHERE fecha <= $1), \
                                 (SELECT max(fecha) FROM {m}.productividad))"
            ),
            // Per agent and day over a date range (optionally one agent).
            productivity: format!(
                "SELECT fecha, correo_agente, min(nombre_agente), min(documento_agente), \
                        sum(gestiones)::int8, sum(contactos_efectivos)::int8, sum(pdp)::int8, \
                        sum(monto_compromiso)::float8 \
                 FROM {m}.productividad \
                 WHERE fecha BETWEEN $1 AND $2 \
                   AND ($3::text IS NULL OR correo_agente = $3 OR nombre_agente = $3) \
                   AND (cardinality($4::text[]) = 0 OR cartera = ANY($4::text[])) \
                 GROUP BY fecha, correo_agente ORDER BY fecha, correo_agente"
            ),
            productivity_hourly: format!(
                "SELECT hora, sum(gestiones)::int8, sum(pdp)::int8 \
                 FROM {m}.operacion \
                 WHERE fecha BETWEEN $1 AND $2 AND canal = 'HUMANO' \
                   AND (cardinality($3::text[]) = 0 OR cartera = ANY($3::text[])) \
                 GROUP BY hora ORDER BY hora"
            ),
            agents: format!(
                "SELECT correo_agente, min(nombre_agente), min(documento_agente), min(fecha), \
                        max(fecha) \
                 FROM {m}.productividad WHERE fecha BETWEEN $1 AND $2 \
                 GROUP BY correo_agente ORDER BY 2, 1"
            ),
        }
    }

    /// The dashboard statement for `cols` grouped by each of `sets` and in total.
    pub fn dashboard(&self, cols: &[Dimension], sets: &[Vec<Dimension>]) -> String {
        let names: Vec<&str> = cols.iter().map(|d| d.column()).collect();
        let select: Vec<String> = names.iter().map(|c| format!("{c}::text")).collect();
        let groups: Vec<String> = sets
            .iter()
            .map(|s| {
                let cs: Vec<&str> = s.iter().map(|d| d.column()).collect();
                format!("({})", cs.join(", "))
            })
            .chain(std::iter::once("()".to_string()))
            .collect();
        format!(
            "SELECT GROUPING({g})::int4, {select}, {COUNTER_SQL}, max(dia_gestion) \
             FROM {m}.dashboard \
             WHERE fecha_foto = $1 \
               AND (cardinality($2::text[]) = 0 OR cartera = ANY($2::text[])) \
               AND (cardinality($3::text[]) = 0 OR servicio = ANY($3::text[])) \
               AND (cardinality($4::text[]) = 0 OR periodo = ANY($4::text[])) \
               AND (cardinality($5::text[]) = 0 OR tramo = ANY($5::text[])) \
               AND (cardinality($6::int4[]) = 0 OR dia_vencimiento = ANY($6::int4[])) \
               AND (cardinality($7::text[]) = 0 OR rango_deuda = ANY($7::text[])) \
               AND (($8::date IS NULL AND $9::date IS NULL) OR archivo IN ( \
                    SELECT archivo FROM aux.campana \
                     WHERE fecha_apertura >= coalesce($8::date, '-infinity'::date) \
                       AND fecha_apertura <= coalesce($9::date, 'infinity'::date))) \
             GROUP BY GROUPING SETS ({sets})",
            g = names.join(", "),
            select = select.join(", "),
            m = self.schema,
            sets = groups.join(", "),
        )
    }
}
