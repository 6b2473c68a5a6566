//! Which rows a table load reads: the window on its incremental column.
//!
//! lower = watermark − lookback (inclusive), or the table's `initial` value on the first load, or
//! unbounded; upper = unbounded for snapshot sources (files, generator). The watermark is the
//! greatest value actually loaded, so nothing between it and the next run is skipped, and the
//! lookback re-reads late rows (the merge makes the overlap harmless).

use pulso_operators::window::{IncValue, Window};
use pulso_sinks::state::Watermark;

use crate::error::EngineError;
use crate::pipeline::TableNode;

/// The window of one load, or `None` when the whole source is read (no incremental column, or a
/// full refresh).
pub fn window_for(
    node: &TableNode,
    watermark: Option<Watermark>,
    full_refresh: bool,
) -> Result<Option<Window>, EngineError> {
    let Some(inc) = &node.incremental else {
        return Ok(None);
    };
    if full_refresh {
        return Ok(None);
    }
    let lower = match watermark {
        Some(w) => {
            let value = IncValue::parse(inc.ty, &w.to_iso()).map_err(|e| {
                EngineError::Usage(format!(
                    "stored watermark {} does not fit incremental type {:?}: {e} \
                     (fix it with `pulso-flow watermarks set` or `reset`)",
                    w.to_iso(),
                    inc.ty
                ))
            })?;
            Some(value.minus(inc.lookback))
        }
        None => inc.initial.clone(),
    };
    Ok(Some(Window {
        column: inc.column.clone(),
        ty: inc.ty,
        lower,
        upper: None,
    }))
}

/// Human text of a window bound for logs, the ledger and explain.
pub fn bound_text(v: Option<&IncValue>) -> Option<String> {
    v.map(IncValue::to_iso)
}
