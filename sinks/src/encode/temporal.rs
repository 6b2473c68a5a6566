//! Date and time arithmetic for the PostgreSQL binary formats.
//!
//! PostgreSQL counts from 2000-01-01: `date` is i32 days, `timestamp`/`timestamptz` are i64
//! microseconds (for `timestamptz`, since 2000-01-01T00:00:00Z), `time` is i64 microseconds
//! since midnight. Arrow counts from 1970-01-01 in several units.
//!
//! Sub-microsecond input (nanoseconds, longer fractions in text) is truncated toward −∞
//! (floor) everywhere, so an instant never moves to a later second, day or year.

use arrow::datatypes::TimeUnit;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

/// Days from 1970-01-01 to 2000-01-01.
pub(super) const UNIX_TO_PG_DAYS: i64 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub(super) const UNIX_TO_PG_MICROS: i64 = UNIX_TO_PG_DAYS * MICROS_PER_DAY;
pub(super) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// PostgreSQL's valid `date` range in days since 2000-01-01: 4714-11-24 BC (Julian day 0) up
/// to, not including, 5874898-01-01 (`DATE_END_JULIAN` − `POSTGRES_EPOCH_JDATE`).
const PG_DATE_MIN: i64 = -2_451_545;
const PG_DATE_END: i64 = 2_147_483_494 - 2_451_545;
/// PostgreSQL's valid `timestamp` range in µs since 2000-01-01 (`MIN_TIMESTAMP`,
/// `END_TIMESTAMP`); ±infinity lie outside and are never produced.
const PG_TIMESTAMP_MIN: i64 = -211_813_488_000_000_000;
const PG_TIMESTAMP_END: i64 = 9_223_371_331_200_000_000;

/// Days since 1970 → PostgreSQL days, `None` outside PostgreSQL's date range.
pub(super) fn unix_days_to_pg(days: i64) -> Option<i32> {
    let pg = days.checked_sub(UNIX_TO_PG_DAYS)?;
    if (PG_DATE_MIN..PG_DATE_END).contains(&pg) {
        i32::try_from(pg).ok()
    } else {
        None
    }
}

/// µs since 1970 → PostgreSQL µs, `None` outside PostgreSQL's timestamp range.
pub(super) fn unix_micros_to_pg(micros: i64) -> Option<i64> {
    let pg = micros.checked_sub(UNIX_TO_PG_MICROS)?;
    (PG_TIMESTAMP_MIN..PG_TIMESTAMP_END)
        .contains(&pg)
        .then_some(pg)
}

/// An Arrow timestamp/time value in `unit` → µs (floor for nanoseconds); `None` on overflow.
pub(super) fn to_micros(value: i64, unit: TimeUnit) -> Option<i64> {
    match unit {
        TimeUnit::Second => value.checked_mul(1_000_000),
        TimeUnit::Millisecond => value.checked_mul(1_000),
        TimeUnit::Microsecond => Some(value),
        TimeUnit::Nanosecond => Some(value.div_euclid(1_000)),
    }
}

/// Wall-clock µs since 1970 of the instant `unix_micros` in `tz`.
pub(super) fn instant_to_wall(unix_micros: i64, tz: &Tz) -> Option<i64> {
    let utc = DateTime::from_timestamp_micros(unix_micros)?;
    let offset = tz.offset_from_utc_datetime(&utc.naive_utc()).fix();
    unix_micros.checked_add(i64::from(offset.local_minus_utc()) * 1_000_000)
}

/// The instant (µs since 1970) of the wall-clock time `wall_micros` in `tz`, resolved as
/// PostgreSQL resolves local times: an ambiguous time (clocks turned back) is the later
/// instant, a time skipped by a forward jump uses the offset in force before the jump.
pub(super) fn wall_to_instant(wall_micros: i64, tz: &Tz) -> Option<i64> {
    let naive = DateTime::from_timestamp_micros(wall_micros)?.naive_utc();
    let offset_seconds = match tz.offset_from_local_datetime(&naive) {
        chrono::LocalResult::Single(o) => o.fix().local_minus_utc(),
        chrono::LocalResult::Ambiguous(a, b) => {
            // The later instant has the smaller UTC offset.
            a.fix().local_minus_utc().min(b.fix().local_minus_utc())
        }
        chrono::LocalResult::None => offset_before_gap(&naive, tz)?,
    };
    wall_micros.checked_sub(i64::from(offset_seconds) * 1_000_000)
}

/// The UTC offset a day before a skipped local time: the offset in force before the jump
/// (zones do not jump twice within a day).
fn offset_before_gap(naive: &NaiveDateTime, tz: &Tz) -> Option<i32> {
    let earlier = naive.checked_sub_signed(TimeDelta::days(1))?;
    Some(
        tz.offset_from_utc_datetime(&earlier)
            .fix()
            .local_minus_utc(),
    )
}

/// `YYYY-MM-DD` (surrounding white space allowed) → days since 1970.
pub(super) fn parse_date(text: &str) -> Option<i64> {
    let mut p = Parser::new(text.trim());
    let days = p.date()?;
    p.done().then_some(days)
}

/// `HH:MM[:SS[.fraction]]` → µs since midnight; `24:00:00` is allowed, as in PostgreSQL.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    let mut p = Parser::new(text.trim());
    let micros = p.time()?;
    p.done().then_some(micros)
}

/// A parsed timestamp text: wall-clock µs since 1970 and the UTC offset in seconds if the text
/// named one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ParsedTimestamp {
    pub wall_micros: i64,
    pub offset_seconds: Option<i32>,
}

impl ParsedTimestamp {
    /// The instant, if the text named an offset.
    pub fn instant(self) -> Option<i64> {
        let offset = self.offset_seconds?;
        self.wall_micros.checked_sub(i64::from(offset) * 1_000_000)
    }
}

/// `YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]]][ ][Z|UTC|±HH[:MM]|±HHMM]` (surrounding white space
/// allowed; a date alone is midnight).
pub(super) fn parse_timestamp(text: &str) -> Option<ParsedTimestamp> {
    let mut p = Parser::new(text.trim());
    let days = p.date()?;
    let mut micros = days.checked_mul(MICROS_PER_DAY)?;
    if p.eat(b'T') || p.eat(b't') || p.eat(b' ') {
        micros = micros.checked_add(p.time()?)?;
    }
    p.eat(b' ');
    let offset_seconds = if p.done() { None } else { Some(p.offset()?) };
    p.done().then_some(ParsedTimestamp {
        wall_micros: micros,
        offset_seconds,
    })
}

/// A byte cursor for the fixed-layout date/time texts; every step returns `None` on mismatch.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser {
            s: s.as_bytes(),
            i: 0,
        }
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn require(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// Between `min` and `max` ASCII digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let mut value: i64 = 0;
        while self.i - start < max {
            match self.s.get(self.i) {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + i64::from(b - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(value)
    }

    /// `YYYY-MM-DD` (4 to 6 year digits) → days since 1970.
    fn date(&mut self) -> Option<i64> {
        let year = self.digits(4, 6)?;
        self.require(b'-')?;
        let month = self.digits(2, 2)?;
        self.require(b'-')?;
        let day = self.digits(2, 2)?;
        let date = NaiveDate::from_ymd_opt(
            i32::try_from(year).ok()?,
            u32::try_from(month).ok()?,
            u32::try_from(day).ok()?,
        )?;
        Some(
            date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?)
                .num_days(),
        )
    }

    /// `HH:MM[:SS[.fraction]]` → µs since midnight; fraction digits after the sixth are
    /// truncated.
    fn time(&mut self) -> Option<i64> {
        let hour = self.digits(2, 2)?;
        self.require(b':')?;
        let minute = self.digits(2, 2)?;
        let mut second = 0;
        let mut micros = 0;
        if self.eat(b':') {
            second = self.digits(2, 2)?;
            if self.eat(b'.') {
                micros = self.fraction_micros()?;
            }
        }
        if minute > 59 || second > 59 || hour > 24 {
            return None;
        }
        let total = ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros;
        (total <= MICROS_PER_DAY).then_some(total)
    }

    /// One or more fraction digits → µs (digits past the sixth truncated).
    fn fraction_micros(&mut self) -> Option<i64> {
        let start = self.i;
        let mut micros = 0;
        while let Some(b @ b'0'..=b'9') = self.s.get(self.i) {
            let place = self.i - start;
            if place < 6 {
                micros = micros * 10 + i64::from(b - b'0');
            }
            self.i += 1;
        }
        let len = self.i - start;
        if len == 0 {
            return None;
        }
        for _ in len..6 {
            micros *= 10;
        }
        Some(micros)
    }

    /// `Z`, `UTC`, `±HH`, `±HH:MM`, `±HHMM` → seconds east of UTC.
    fn offset(&mut self) -> Option<i32> {
        if self.eat(b'Z') || self.eat(b'z') {
            return Some(0);
        }
        if self.s[self.i..].eq_ignore_ascii_case(b"utc") {
            self.i = self.s.len();
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.digits(2, 2)?;
        self.eat(b':');
        let minutes = if self.done() { 0 } else { self.digits(2, 2)? };
        if hours > 15 || minutes > 59 {
            return None;
        }
        i32::try_from(sign * (hours * 3600 + minutes * 60)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_constants() {
        let pg_epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let unix_epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(
            pg_epoch.signed_duration_since(unix_epoch).num_days(),
            UNIX_TO_PG_DAYS
        );
        assert_eq!(unix_days_to_pg(UNIX_TO_PG_DAYS), Some(0));
        assert_eq!(unix_days_to_pg(i64::MIN), None);
        assert_eq!(unix_micros_to_pg(i64::MIN), None);
        assert_eq!(unix_micros_to_pg(UNIX_TO_PG_MICROS), Some(0));
    }

    #[test]
    fn unit_conversion_floors_and_checks_overflow() {
        assert_eq!(to_micros(-1, TimeUnit::Nanosecond), Some(-1));
        assert_eq!(to_micros(-1_000, TimeUnit::Nanosecond), Some(-1));
        assert_eq!(to_micros(1_999, TimeUnit::Nanosecond), Some(1));
        assert_eq!(to_micros(i64::MAX, TimeUnit::Second), None);
        assert_eq!(to_micros(-2, TimeUnit::Millisecond), Some(-2_000));
    }

    #[test]
    fn parses_dates_times_and_timestamps() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date(" 2000-01-01 "), Some(UNIX_TO_PG_DAYS));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2025-1-01"), None);
        assert_eq!(parse_date("2025-01-01x"), None);
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("24:00:00"), Some(MICROS_PER_DAY));
        assert_eq!(parse_time("24:00:01"), None);
        assert_eq!(parse_time("23:59:59.9999999"), Some(MICROS_PER_DAY - 1));
        assert_eq!(parse_time("12:30:15.5"), Some(45_015_500_000));
        assert_eq!(parse_time("12:60:00"), None);
        assert_eq!(parse_time("12:00:00."), None);
        let ts = |s| parse_timestamp(s);
        assert_eq!(
            ts("1970-01-01T00:00:01"),
            Some(ParsedTimestamp {
                wall_micros: 1_000_000,
                offset_seconds: None
            })
        );
        assert_eq!(
            ts("1970-01-01 00:00:01Z").unwrap().instant(),
            Some(1_000_000)
        );
        assert_eq!(
            ts("1970-01-01 05:00:00-05:00").unwrap().instant(),
            Some(10 * 3_600_000_000)
        );
        assert_eq!(
            ts("1970-01-01 05:00:00 +0530").unwrap().offset_seconds,
            Some(19_800)
        );
        assert_eq!(
            ts("1970-01-01 05:00:00+05").unwrap().offset_seconds,
            Some(18_000)
        );
        assert_eq!(ts("1970-01-01 05:00 UTC").unwrap().offset_seconds, Some(0));
        assert_eq!(ts("1970-01-02").unwrap().wall_micros, MICROS_PER_DAY);
        assert_eq!(ts("1970-01-01 5:00:00"), None);
        assert_eq!(ts("1970-01-01 05:00:00+5"), None);
        assert_eq!(ts("1970-01-01 05:00:00 junk"), None);
    }

    #[test]
    fn lima_wall_clock() {
        let lima: Tz = "America/Lima".parse().unwrap();
        // 2025-06-27 00:00 in Lima is 05:00 UTC.
        let wall = 20_266 * MICROS_PER_DAY;
        let instant = wall_to_instant(wall, &lima).unwrap();
        assert_eq!(instant - wall, 5 * 3_600_000_000);
        assert_eq!(instant_to_wall(instant, &lima), Some(wall));
    }

    #[test]
    fn dst_gap_and_fold_follow_postgres() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let wall = |s: &str| parse_timestamp(s).unwrap().wall_micros;
        let instant = |s: &str| parse_timestamp(s).unwrap().instant().unwrap();
        // Skipped: 02:30 read with the offset before the jump (-05) → 07:30Z.
        assert_eq!(
            wall_to_instant(wall("2018-03-11 02:30:00"), &ny),
            Some(instant("2018-03-11 07:30:00Z"))
        );
        // Ambiguous: 01:30 read as standard time (-05), the later instant.
        assert_eq!(
            wall_to_instant(wall("2018-11-04 01:30:00"), &ny),
            Some(instant("2018-11-04 06:30:00Z"))
        );
    }
}
