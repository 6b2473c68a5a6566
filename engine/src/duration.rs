//! Durations as users write them in pipeline files: `30s`, `15m`, `12h`, `7d`, `2w`.

use chrono::Duration;

/// Parse `<integer><unit>` with unit s, m, h, d or w (also `7 days`, `1 hour`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected a number followed by s, m, h, d or w")
    })?;
    let d = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => Duration::try_seconds(n),
        "m" | "min" | "minute" | "minutes" => Duration::try_minutes(n),
        "h" | "hour" | "hours" => Duration::try_hours(n),
        "d" | "day" | "days" => Duration::try_days(n),
        "w" | "week" | "weeks" => Duration::try_weeks(n),
        "" => {
            return Err(format!(
                "invalid duration {text:?}: missing unit (s, m, h, d or w)"
            ));
        }
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?} (use s, m, h, d or w)"
            ));
        }
    };
    d.ok_or_else(|| format!("invalid duration {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::seconds(30));
        assert_eq!(parse_duration("14d").unwrap(), Duration::days(14));
        assert_eq!(parse_duration("7 days").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("0h").unwrap(), Duration::zero());
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3y").is_err());
    }
}
