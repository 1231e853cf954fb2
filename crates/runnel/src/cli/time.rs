//! Wall-clock helpers for `--to-datetime` and timestamps, without a date-time dependency.
//! Datetimes without an offset are taken as UTC (Kafka's tool uses the local zone; a CLI run
//! in a container usually has UTC anyway, and UTC is unambiguous in scripts).

use super::{CliError, CliResult};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn number(s: &str, what: &str, range: std::ops::RangeInclusive<i64>) -> CliResult<i64> {
    let v: i64 = s
        .parse()
        .map_err(|_| CliError::usage(format!("invalid {what} {s:?} in datetime")))?;
    if !range.contains(&v) {
        return Err(CliError::usage(format!("{what} {v} out of range in datetime")));
    }
    Ok(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM|-HH:MM]` (also `YYYY-MM-DD`) into epoch ms.
pub fn parse_datetime_ms(s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::usage(format!(
            "invalid datetime {s:?}, expected YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]"
        ))
    };
    let (date, rest) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
    let mut d = date.split('-');
    let (Some(y), Some(mo), Some(da), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (year, month, day) = (
        number(y, "year", 0..=9999)?,
        number(mo, "month", 1..=12)?,
        number(da, "day", 1..=31)?,
    );
    let (clock, offset_min) = split_offset(rest).ok_or_else(bad)?;
    let (hms, millis) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut t = hms.split(':');
    let (Some(h), Some(mi)) = (t.next(), t.next()) else {
        return Err(bad());
    };
    let sec = t.next().unwrap_or("0");
    let (hour, minute, second) = (
        number(h, "hour", 0..=23)?,
        number(mi, "minute", 0..=59)?,
        number(sec, "second", 0..=60)?,
    );
    let ms_digits: String = millis.chars().chain("000".chars()).take(3).collect();
    let ms = number(&ms_digits, "milliseconds", 0..=999)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Ok(secs * 1000 + ms)
}

/// Splits a trailing `Z` / `+HH:MM` / `-HH:MM` off a time of day; offset in minutes.
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(pos) = t.rfind(['+', '-']) else {
        return Some((t, 0));
    };
    let (clock, off) = t.split_at(pos);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let digits: String = off[1..].chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 4 {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    Some((clock, sign * (hours * 60 + minutes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_to_epoch_ms() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00").ok(), Some(0));
        assert_eq!(parse_datetime_ms("1970-01-02").ok(), Some(86_400_000));
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:34:56.789Z").ok(),
            Some(1_709_210_096_789)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T14:34:56.789+02:00").ok(),
            Some(1_709_210_096_789)
        );
        assert!(parse_datetime_ms("2024-13-01T00:00:00").is_err());
        assert!(parse_datetime_ms("yesterday").is_err());
    }
}
