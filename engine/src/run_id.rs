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

/// A new run id: the UTC start time to the second, then eight hex digits: the microsecond within
/// that second (20 bits) and the low 12 bits of the process id. So ids of one starter sort by
/// start time to the microsecond (`max(run_id)` is the latest run), and two runs started in the
/// same microsecond by two processes still differ.
pub fn new_run_id(starter: Starter) -> String {
    let now = Utc::now();
    // At most 999,999 (a leap second reads as 1,000,000 and more): fits in 20 bits.
    let micros = now.timestamp_subsec_micros().min(999_999);
    let salt = (micros << 12) | (std::process::id() & 0xfff);
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

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let mut previous = new_run_id(Starter::Cli);
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(2));
            let next = new_run_id(Starter::Cli);
            assert!(next > previous, "{next} after {previous}");
            previous = next;
        }
    }
}
