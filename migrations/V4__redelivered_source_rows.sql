-- Issue 9: source rows delivered again (in another file, the same day or a later one),
-- corrected, or identical. docs/kpis.md ("Re-delivered, corrected and vanished source rows")
-- states the rule of every raw table; this migration gives two of them their shape.

-- ── Payments: the occurrence of a payment inside its delivery file ──────────────────────────
-- A payment is (document, date, amount) plus its occurrence within the file: two identical
-- payments in one file are two payments (occurrences 1 and 2); the same file content delivered
-- again in another file repeats the same occurrences, which aux.pago counts once. The source
-- numbers the occurrences (pipelines.yaml: ROW_NUMBER over the file's identical rows). Rows
-- loaded before this migration are occurrence 1; `pulso-flow run --tables pagos --full-refresh`
-- re-reads the older files to find their second occurrences.
ALTER TABLE raw.pagos ADD COLUMN IF NOT EXISTS ocurrencia integer NOT NULL DEFAULT 1;
ALTER TABLE raw.pagos ALTER COLUMN ocurrencia DROP DEFAULT;
ALTER TABLE raw.pagos DROP CONSTRAINT IF EXISTS pagos_pkey;
ALTER TABLE raw.pagos ADD PRIMARY KEY (nro_documento, fecha_pago, monto_cancelado, archivo, ocurrencia);
COMMENT ON COLUMN raw.pagos.ocurrencia IS
    'occurrence (1, 2, …) of this (nro_documento, fecha_pago, monto_cancelado) within the file archivo';

ALTER TABLE aux.pago ADD COLUMN IF NOT EXISTS ocurrencia integer NOT NULL DEFAULT 1;
ALTER TABLE aux.pago ALTER COLUMN ocurrencia DROP DEFAULT;
ALTER TABLE aux.pago DROP CONSTRAINT IF EXISTS pago_pkey;
ALTER TABLE aux.pago ADD PRIMARY KEY (nro_documento, fecha_pago, monto_cancelado, ocurrencia);
COMMENT ON COLUMN aux.pago.entregas IS 'payment files that delivered this occurrence';
COMMENT ON COLUMN aux.pago.motivo_no_atribuido IS
    'NULL (attributed) | DOCUMENTO_SIN_CUENTA | FUERA_DE_VENTANA | CUENTA_NO_ASIGNADA';
-- pago.sql re-examines every payment not attributed to a campaign on each run.
CREATE INDEX IF NOT EXISTS pago_no_atribuido ON aux.pago (fecha_pago) WHERE archivo IS NULL;

-- ── Debt snapshots: the delivery of each document that counts ───────────────────────────────
-- Amounts that are not positive are loaded too (the source keeps them since this migration), so
-- that a correction file can take a document out of a snapshot: the latest delivery decides,
-- and a document whose latest amount is <= 0 owes nothing that day.
COMMENT ON COLUMN raw.trandeuda.monto_exigible IS
    'as delivered; may be <= 0 in a correction (the document owes nothing that day)';

-- Within one snapshot day a document counts once: its latest delivery (greatest creado_el; an
-- undated delivery loses to a dated one; then the greatest file name, then account). The one
-- owner of that rule: deuda_diaria.sql sums it per account, pago.sql looks documents up in it.
CREATE OR REPLACE VIEW aux.trandeuda_vigente AS
SELECT DISTINCT ON (t.fecha_proceso, t.nro_documento)
       t.fecha_proceso, t.nro_documento, t.cod_cuenta, t.monto_exigible, t.archivo, t.creado_el
  FROM raw.trandeuda t
 ORDER BY t.fecha_proceso, t.nro_documento, t.creado_el DESC NULLS LAST, t.archivo DESC,
          t.cod_cuenta DESC;
COMMENT ON VIEW aux.trandeuda_vigente IS
    'the delivery of each (snapshot day, document) that counts: latest creado_el, then file name';
