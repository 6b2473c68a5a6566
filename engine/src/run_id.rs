//! Run ids: the key of a run in `pulso_flow.runs`, `node_runs` and `changes`, issued here for
//! every starter (the CLI, the API's refresh) so that they share one shape.

use chrono::Utc;

/// Who started a run; marked in its id so that the ledger tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    /// `pulso-flow run`: `20250601T050000Z-1a2b3c4d`.
    Cli,
    /// A refresh asked of the HTTP API: `20250601T050000Z-api1a2b3c4d`.
    Api,
}

/// A new run id: the UTC start time (so ids sort by time), then a salt from the sub-second clock
/// and the process id (two runs started in the same second, by one process or two, differ).
pub fn new_run_id(starter: Starter) -> String {
    let now = Utc::now();
    let salt = now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16);
    let mark = match starter {
        Starter::Cli => "",
        Starter::Api => "api",
    };
    format!("{}-{mark}{salt:08x}", now.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_with_the_utc_time_and_mark_the_api() {
        let cli = new_run_id(Starter::Cli);
        let api = new_run_id(Starter::Api);
        let (time, salt) = cli.split_once('-').unwrap();
        assert!(
            chrono::NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%SZ").is_ok(),
            "{cli}"
        );
        assert_eq!(salt.len(), 8, "{cli}");
        assert!(salt.chars().all(|c| c.is_ascii_hexdigit()), "{cli}");
        let (_, salt) = api.split_once('-').unwrap();
        assert!(salt.starts_with("api") && salt.len() == 11, "{api}");
    }
}
