//! Dates on the program-date-time timeline: Unix milliseconds ⇄ ISO 8601 text.
//!
//! Written by hand (civil-from-days and its inverse, after Howard Hinnant's algorithms) so a
//! plugin needs no date crate: the guest has no clock and no time zone database, and the
//! only dates it handles are UTC instants from playlists, cues and its config.

use crate::error::{Error, Result};

const MS_PER_DAY: u64 = 86_400_000;

/// Formats Unix milliseconds the way `EXT-X-PROGRAM-DATE-TIME` and `START-DATE` carry them:
/// UTC, milliseconds, `Z`.
///
/// ```
/// assert_eq!(weir_guest::time::format_iso8601(1_795_633_356_123), "2026-11-25T19:02:36.123Z");
/// ```
pub fn format_iso8601(unix_ms: u64) -> String {
    let days = unix_ms / MS_PER_DAY;
    let ms_of_day = unix_ms % MS_PER_DAY;
    // u64 days since 1970 fit i64 for any date a u64 of milliseconds can name.
    let (year, month, day) = civil_from_days(days as i64);
    if let Ok(year @ 0..=9999) = u32::try_from(year) {
        // The usual case, written digit by digit (what the `format!` below writes).
        let mut out = String::with_capacity(24);
        push_digits(&mut out, year, 4);
        out.push('-');
        push_digits(&mut out, month, 2);
        out.push('-');
        push_digits(&mut out, day, 2);
        out.push('T');
        push_digits(&mut out, (ms_of_day / 3_600_000) as u32, 2);
        out.push(':');
        push_digits(&mut out, (ms_of_day / 60_000 % 60) as u32, 2);
        out.push(':');
        push_digits(&mut out, (ms_of_day / 1000 % 60) as u32, 2);
        out.push('.');
        push_digits(&mut out, (ms_of_day % 1000) as u32, 3);
        out.push('Z');
        return out;
    }
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// Parses an RFC 3339 / ISO 8601 date-time with a zone (`Z`, `+hh:mm`, `-hhmm`) into Unix
/// milliseconds. Fractions beyond milliseconds are truncated; dates before 1970 are errors.
///
/// ```
/// use weir_guest::time::parse_iso8601;
/// assert_eq!(parse_iso8601("2026-11-25T19:02:36.123Z").unwrap(), 1_795_633_356_123);
/// assert_eq!(parse_iso8601("2026-11-25T20:02:36.123+01:00").unwrap(), 1_795_633_356_123);
/// ```
pub fn parse_iso8601(text: &str) -> Result<u64> {
    let bad = || {
        Error::new(format!(
            "`{text}` is not an ISO 8601 date-time with a zone (e.g. 2026-11-25T19:02:36.123Z)"
        ))
    };
    let b = text.as_bytes();
    if let Some(ms) = parse_common(b) {
        return Ok(ms);
    }
    let digits = |from: usize, len: usize| -> Option<i64> {
        let s = b.get(from..from + len)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let year = digits(0, 4).ok_or_else(bad)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let month = digits(5, 2).ok_or_else(bad)?;
    let day = digits(8, 2).ok_or_else(bad)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(bad());
    }
    let hour = digits(11, 2).ok_or_else(bad)?;
    if b.get(13) != Some(&b':') {
        return Err(bad());
    }
    let minute = digits(14, 2).ok_or_else(bad)?;
    if b.get(16) != Some(&b':') {
        return Err(bad());
    }
    let second = digits(17, 2).ok_or_else(bad)?;
    let mut i = 19;
    let mut millis = 0i64;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let h = digits(i + 1, 2).ok_or_else(bad)?;
            let (m, end) = if b.get(i + 3) == Some(&b':') {
                (digits(i + 4, 2).ok_or_else(bad)?, i + 6)
            } else {
                (digits(i + 3, 2).ok_or_else(bad)?, i + 5)
            };
            if end != b.len() || h > 23 || m > 59 {
                return Err(bad());
            }
            let off = h * 60 + m;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return Err(bad()),
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    // 60 seconds only for a leap second, which Unix time folds into the next second.
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let ms = (((days * 24 + hour) * 60 + minute - offset_min) * 60 + second) * 1000 + millis;
    u64::try_from(ms).map_err(|_| Error::new(format!("`{text}` is before 1970")))
}

/// Formats milliseconds as decimal seconds with three places, as `DURATION`,
/// `PLANNED-DURATION` and `X-RESUME-OFFSET` carry them: `30000` → `30.000`.
pub fn format_secs(ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_decimal(&mut out, ms / 1000);
    out.push('.');
    push_digits(&mut out, (ms % 1000) as u32, 3);
    out
}

/// Appends the last `width` decimal digits of `n`, zero-padded.
/// Appends `n` in decimal (what `format!("{n}")` writes, without the formatting machinery,
/// which costs a guest call measurable time).
pub fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut rest = n;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend(digits[..len].iter().rev().map(|&d| char::from(d)));
}

fn push_digits(out: &mut String, n: u32, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u32.pow(place) % 10) as u8));
    }
}

/// Seconds (an `EXTINF` or `DURATION` value) to whole milliseconds, rounded.
pub fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * 1000.0).round() as u64
    } else {
        0
    }
}

/// The form weir and most packagers write, `2026-11-25T19:02:36.123Z`, read without the
/// general parser's detours. `None` for anything else (including an invalid date in that
/// form), which then goes the general way and gets its error from there.
fn parse_common(b: &[u8]) -> Option<u64> {
    let b: &[u8; 24] = b.try_into().ok()?;
    if b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let mut ok = true;
    let mut num = |digits: &[u8]| -> i64 {
        digits.iter().fold(0, |n, d| {
            ok &= d.is_ascii_digit();
            n * 10 + i64::from(d.wrapping_sub(b'0'))
        })
    };
    let year = num(&b[0..4]);
    let month = num(&b[5..7]);
    let day = num(&b[8..10]);
    let hour = num(&b[11..13]);
    let minute = num(&b[14..16]);
    let second = num(&b[17..19]);
    let millis = num(&b[20..23]);
    if !ok {
        return None;
    }
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    let ms = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis;
    u64::try_from(ms).ok()
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a civil date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_like_format() {
        for n in [0u64, 7, 10, 1_795_622_400_000, u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn formats_known_dates() {
        assert_eq!(format_iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_iso8601(1_795_622_400_000),
            "2026-11-25T16:00:00.000Z"
        );
        assert_eq!(
            format_iso8601(1_795_622_414_533),
            "2026-11-25T16:00:14.533Z"
        );
        assert_eq!(
            format_iso8601(4_102_444_799_999),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_inverts_format_across_years() {
        // Every ~37 hours for 130 years, plus leap-day edges.
        let mut ms = 0u64;
        while ms < 4_102_444_800_000 {
            assert_eq!(parse_iso8601(&format_iso8601(ms)).unwrap(), ms, "{ms}");
            ms += 133_333_337;
        }
        for date in [
            "2024-02-29T12:00:00Z",
            "2000-02-29T00:00:00Z",
            "2100-02-28T23:59:59Z",
        ] {
            let ms = parse_iso8601(date).unwrap();
            assert_eq!(format_iso8601(ms).replace(".000", ""), date);
        }
    }

    #[test]
    fn parses_zones_and_fractions() {
        let base = parse_iso8601("2026-11-25T16:00:00Z").unwrap();
        assert_eq!(parse_iso8601("2026-11-25T16:00:00.5Z").unwrap(), base + 500);
        assert_eq!(
            parse_iso8601("2026-11-25T16:00:00.123456Z").unwrap(),
            base + 123
        );
        assert_eq!(parse_iso8601("2026-11-25T11:00:00-05:00").unwrap(), base);
        assert_eq!(parse_iso8601("2026-11-25T21:30:00+0530").unwrap(), base);
        assert_eq!(parse_iso8601("2026-11-25t16:00:00z").unwrap(), base);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T16:00:00",
            "2026-11-25T16:00:00.Z",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T16:00:00Zjunk",
            "1969-12-31T23:59:59Z",
            "2026-11-25T16:00:00+25:00",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fast_paths_agree_with_the_general_ones() {
        let mut ms = 0u64;
        while ms < 253_402_300_800_000 {
            let text = format_iso8601(ms);
            let general = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                civil_from_days((ms / MS_PER_DAY) as i64).0,
                civil_from_days((ms / MS_PER_DAY) as i64).1,
                civil_from_days((ms / MS_PER_DAY) as i64).2,
                ms % MS_PER_DAY / 3_600_000,
                ms % MS_PER_DAY / 60_000 % 60,
                ms % MS_PER_DAY / 1000 % 60,
                ms % 1000
            );
            assert_eq!(text, general);
            assert_eq!(parse_common(text.as_bytes()), Some(ms), "{text}");
            ms += 1_234_567_891;
        }
        assert_eq!(format_iso8601(u64::MAX), "584556019-04-03T14:25:51.615Z");
        assert_eq!(parse_iso8601("+10000-01-01T00:00:00Z").ok(), None);
        for text in [
            "2026-02-29T00:00:00.000Z",
            "2026-11-25T24:00:00.000Z",
            "2026-11-25T16:00:00.00aZ",
            "2026-1a-25T16:00:00.000Z",
            "1969-12-31T23:59:59.999Z",
            "2026-11-25T16:00:00.000z",
        ] {
            assert!(
                parse_common(text.as_bytes()).is_none(),
                "{text} takes the general path"
            );
        }
        assert_eq!(
            parse_iso8601("2026-11-25T16:00:60.000Z").unwrap(),
            parse_iso8601("2026-11-25T16:01:00Z").unwrap()
        );
        for ms in [0, 1, 999, 1000, 59_999, 60_000, 4_533, 30_000, u64::MAX] {
            assert_eq!(format_secs(ms), format!("{}.{:03}", ms / 1000, ms % 1000));
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(format_secs(30_000), "30.000");
        assert_eq!(format_secs(4_533), "4.533");
        assert_eq!(format_secs(0), "0.000");
        assert_eq!(secs_to_ms(1.96667), 1967);
        assert_eq!(secs_to_ms(0.03333), 33);
        assert_eq!(secs_to_ms(f64::NAN), 0);
    }
}
