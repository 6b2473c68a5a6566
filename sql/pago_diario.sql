-- aux.pago_diario — attributed payments per account and day.
--
-- Grain:       (fecha, archivo, cuenta).
-- Inputs:      aux.pago.
-- Rule:        every attributed, deduplicated payment counts (W-27: a day with two payments keeps
--              both; re-deliveries were already collapsed). Unattributed payments stay in aux.pago
--              for reconciliation and are not part of any campaign's recovery.
-- Incremental: exactly the payment dates pago reported are rebuilt and reported.

DELETE FROM aux.pago_diario
 WHERE pg_temp.full_refresh()
    OR fecha = ANY (pg_temp.changed_days());

INSERT INTO aux.pago_diario (fecha, archivo, cuenta, cod_luna, monto, pagos)
SELECT p.fecha_pago, p.archivo, p.cuenta, min(p.cod_luna), sum(p.monto_cancelado), count(*)
  FROM aux.pago p
 WHERE p.archivo IS NOT NULL
   AND (pg_temp.full_refresh()
        OR p.fecha_pago = ANY (pg_temp.changed_days()))
 GROUP BY 1, 2, 3;
