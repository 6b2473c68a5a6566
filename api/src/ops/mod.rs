//! The operations page (`/ops`, and `/` for browsers): server-rendered HTML with inline SVG, no
//! script, no external resource. This module only renders: it turns typed ledger rows
//! ([`pulso_sinks::status`]) and the pipeline's [`Graph`](pulso_engine::render::Graph) into
//! HTML; the route (`routes/ops.rs`) reads them and decides what may be shown.
//!
//! * [`health`]: the one status of a node on the page (ok / failed / stale / never run) and its
//!   colours;
//! * [`page`]: the HTML frame, the stylesheet (allowed by a per-response CSP nonce), escaping and
//!   number/time formats;
//! * [`overview`]: the DAG coloured by status, the latest runs;
//! * [`node`]: one node's recent runs, errors, checks and reconciliation, a chart per run;
//! * [`run`]: one run's nodes and its Gantt timeline;
//! * [`chart`]: the inline SVG charts (Gantt, rows and duration per run).

pub mod chart;
pub mod health;
pub mod node;
pub mod overview;
pub mod page;
pub mod run;

/// What the page may say of a failed run's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShown {
    /// The full text (`PULSO_API_PUBLIC_ERROR_DETAIL=full`).
    Full,
    /// A short class only: the text may hold row keys, cell values and file paths.
    Class,
}

/// The refresh forms, shown only when a refresh token is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshForms {
    Shown,
    Hidden,
}

/// A failed run's error as the page shows it: the full text in a `<pre>`, or its class and
/// where to read the rest.
pub fn error_html(error: &str, shown: ErrorShown, run_id: &str) -> String {
    match shown {
        ErrorShown::Full => format!("<pre class=\"err\">{}</pre>", page::text(error)),
        ErrorShown::Class => format!(
            "<pre class=\"err\">{} error; the full text is in the server log and in \
             <code>pulso-flow runs show {}</code> (or set PULSO_API_PUBLIC_ERROR_DETAIL=full)</pre>",
            pulso_sinks::status::error_class(error),
            page::text(run_id)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes_and_what_the_public_page_shows() {
        let e = "table calendario: source failed: csv: cannot parse '2025-13-01' at data/x.csv:3";
        let public = error_html(e, ErrorShown::Class, "r1");
        assert!(public.contains("source error") && !public.contains("2025-13-01"));
        assert!(public.contains("pulso-flow runs show r1"));
        let full = error_html("a <b> & c", ErrorShown::Full, "r1");
        assert_eq!(full, "<pre class=\"err\">a &lt;b&gt; &amp; c</pre>");
    }
}
