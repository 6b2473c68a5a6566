//! The HTML frame of every operations page, its stylesheet, and the formats (escaping, numbers,
//! durations, times) the views share.
//!
//! The pages carry no script. The one `<style>` element is allowed by a nonce drawn per
//! response, so the CSP keeps `default-src 'none'` and needs neither `'unsafe-inline'` nor any
//! origin but the server's own (`form-action 'self'` for the refresh form). The SVG inside uses
//! presentation attributes (`fill`, `stroke`), which CSP does not govern, never `style=""`.

use std::fmt::Write as _;

use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, SecondsFormat, Utc};

pub use pulso_engine::render::svg::{attr, text};

const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#102027;background:#fafafa}\
header{background:#263238;color:#eceff1;padding:10px 20px;display:flex;gap:18px;align-items:baseline;flex-wrap:wrap}\
header a{color:#fff;font-weight:600;text-decoration:none}\
header .meta{color:#b0bec5;font-size:13px}\
main{padding:16px 20px;max-width:1800px}\
h1{font-size:20px;margin:6px 0 12px}h2{font-size:16px;margin:22px 0 8px}\
a{color:#1565c0}\
.dagbox{overflow-x:auto;background:#fff;border:1px solid #cfd8dc;border-radius:6px;padding:6px}\
.dagbox svg{display:block}\
.legend{display:flex;gap:14px;flex-wrap:wrap;margin:8px 0;font-size:13px}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid}\
.s-ok{background:#c8e6c9;color:#1b5e20;border-color:#2e7d32}\
.s-failed{background:#ffcdd2;color:#b71c1c;border-color:#c62828}\
.s-stale{background:#ffe0b2;color:#bf360c;border-color:#e65100}\
.s-never{background:#eceff1;color:#37474f;border-color:#607d8b}\
.s-running{background:#bbdefb;color:#0d47a1;border-color:#1565c0}\
table{border-collapse:collapse;background:#fff;font-size:13px}\
th,td{border:1px solid #cfd8dc;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#eceff1;font-weight:600}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{background:#fff;border:1px solid #cfd8dc;border-radius:4px;padding:8px;white-space:pre-wrap;word-break:break-word;margin:4px 0;font-size:12px}\
pre.err{border-color:#c62828;background:#fff5f5}\
.muted{color:#607d8b}\
form.refresh{display:flex;gap:8px;align-items:center;margin:10px 0;flex-wrap:wrap}\
form.refresh input[type=password]{width:22em;padding:4px}\
button{padding:4px 12px;border:1px solid #1565c0;background:#1565c0;color:#fff;border-radius:4px;cursor:pointer}\
details{margin:6px 0}summary{cursor:pointer}\
.cards{display:flex;gap:10px;flex-wrap:wrap;margin:6px 0 4px}\
.card{background:#fff;border:1px solid #cfd8dc;border-radius:6px;padding:6px 12px;min-width:9em}\
.card b{display:block;font-size:18px}\
";

/// One page: its title, the line under it, and its body (already HTML).
pub struct Page<'a> {
    pub title: &'a str,
    /// The pipeline's name, shown in the header.
    pub pipeline: &'a str,
    pub now: DateTime<Utc>,
    pub body: String,
}

/// A fresh CSP nonce (128 random bits as hex).
pub fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The Content-Security-Policy of a page whose `<style>` carries `nonce`.
pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The whole document.
pub fn render(page: &Page<'_>, nonce: &str) -> String {
    let mut out = String::with_capacity(page.body.len() + CSS.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · pulso-flow</title>\n<style nonce=\"{nonce}\">{CSS}</style>\n</head>\n\
         <body>\n<header><a href=\"/ops\">pulso-flow operations</a>\
         <span class=\"meta\">pipeline {pipeline}</span>\
         <span class=\"meta\">rendered {now} UTC</span></header>\n<main>\n<h1>{title}</h1>\n",
        title = text(page.title),
        pipeline = text(page.pipeline),
        now = page.now.format("%Y-%m-%d %H:%M:%S"),
    );
    out.push_str(&page.body);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// The headers of a page answer: HTML, its CSP, never stored (it shows live state).
pub fn headers(nonce: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp(nonce)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

/// A status badge.
pub fn badge(class: &str, label: &str) -> String {
    format!(
        "<span class=\"badge s-{}\">{}</span>",
        attr(class),
        text(label)
    )
}

/// `1 234 567` (thin spaces keep columns readable in any locale).
pub fn num(n: i64) -> String {
    crate::marts::kpi::group_digits(n, '\u{2009}')
}

/// `850 ms`, `12.3 s`, `2 m 05 s`, `1 h 02 m`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} m {:02} s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{} h {:02} m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// `2025-06-30 08:15:02`, UTC.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `<time>` with the UTC instant and how long ago it was.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time> <span class=\"muted\">({})</span>",
        t.to_rfc3339_opts(SecondsFormat::Secs, true),
        ts(t),
        ago(t, now)
    )
}

/// `just now`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds();
    if s < 0 {
        "in the future".into()
    } else if s < 60 {
        "just now".into()
    } else if s < 3600 {
        format!("{} min ago", s / 60)
    } else if s < 2 * 86_400 {
        format!("{} h ago", s / 3600)
    } else {
        format!("{} d ago", s / 86_400)
    }
}

/// A path segment, percent-encoded (node names and run ids in links).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(num(0), "0");
        assert_eq!(num(1_234_567), "1\u{2009}234\u{2009}567");
        assert_eq!(num(-1000), "-1\u{2009}000");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_340), "12.3 s");
        assert_eq!(duration(125_000), "2 m 05 s");
        assert_eq!(duration(3_720_000), "1 h 02 m");
        assert_eq!(seg("a b/ç"), "a%20b%2F%C3%A7");
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::minutes(5), now), "5 min ago");
    }

    #[test]
    fn the_csp_allows_only_the_nonced_style() {
        let n = nonce();
        assert_eq!(n.len(), 32);
        let html = render(
            &Page {
                title: "<x>",
                pipeline: "demo",
                now: Utc::now(),
                body: String::new(),
            },
            &n,
        );
        assert!(html.contains(&format!("<style nonce=\"{n}\">")));
        assert!(html.contains("<title>&lt;x&gt; · pulso-flow</title>"));
        assert!(!html.contains("<script"));
        let c = csp(&n);
        assert!(c.starts_with("default-src 'none';"));
        assert!(!c.contains("unsafe"));
    }
}
