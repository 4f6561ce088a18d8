//! Friendly textual forms of logical types: dates, times, timestamps, UUIDs and decimals.

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn digits(s: &str, n: usize, what: &str) -> Result<i64, String> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected {n} digits for the {what}, found '{s}'"));
    }
    s.parse().map_err(|_| format!("bad {what} '{s}'"))
}

/// `YYYY-MM-DD` -> days since the epoch.
pub(crate) fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a date of the form YYYY-MM-DD");
    let mut it = s.split('-');
    let (Some(y), Some(m), Some(d), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let y = digits(y, 4, "year").map_err(|_| bad())?;
    let m = digits(m, 2, "month").map_err(|_| bad())?;
    let d = digits(d, 2, "day").map_err(|_| bad())?;
    let dim = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => return Err(format!("'{s}' has an invalid month")),
    };
    if d < 1 || d > dim {
        return Err(format!("'{s}' has an invalid day"));
    }
    Ok(days_from_civil(y, m, d))
}

/// `HH:MM:SS[.fraction]` -> nanoseconds since midnight.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a time of the form HH:MM:SS[.fraction]");
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    let mut it = hms.split(':');
    let (Some(h), Some(m), Some(sec), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let h = digits(h, 2, "hour").map_err(|_| bad())?;
    let m = digits(m, 2, "minute").map_err(|_| bad())?;
    let sec = digits(sec, 2, "second").map_err(|_| bad())?;
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad());
    }
    let mut nanos = 0i64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{s}' has an invalid fraction of a second (1 to 9 digits)"
            ));
        }
        let v: i64 = f.parse().map_err(|_| bad())?;
        nanos = v * 10i64.pow(9 - u32::try_from(f.len()).unwrap_or(9));
    }
    Ok(((h * 60 + m) * 60 + sec) * 1_000_000_000 + nanos)
}

/// An RFC 3339 timestamp (`local`: without offset) -> nanoseconds since the epoch.
pub(crate) fn parse_timestamp(s: &str, local: bool) -> Result<i128, String> {
    let (date, rest) = match (s.get(..10), s.get(10..11), s.get(11..)) {
        (Some(d), Some("T" | "t" | " "), Some(r)) => (d, r),
        _ => {
            return Err(format!(
                "'{s}' is not a timestamp of the form YYYY-MM-DDTHH:MM:SS[.fraction]{}",
                if local { "" } else { "(Z|+HH:MM|-HH:MM)" }
            ));
        }
    };
    let days = parse_date(date)?;
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, Some(0i64))
    } else if rest.len() > 6
        && matches!(rest.as_bytes().get(rest.len() - 6), Some(b'+' | b'-'))
        && rest.as_bytes().get(rest.len() - 3) == Some(&b':')
    {
        let (t, off) = rest.split_at(rest.len() - 6);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let oh = digits(off.get(1..3).unwrap_or(""), 2, "offset hours")?;
        let om = digits(off.get(4..6).unwrap_or(""), 2, "offset minutes")?;
        if oh > 23 || om > 59 {
            return Err(format!("'{s}' has an invalid offset"));
        }
        (t, Some(sign * (oh * 3600 + om * 60)))
    } else {
        (rest, None)
    };
    let offset = match (offset_secs, local) {
        (Some(_), true) => {
            return Err(format!(
                "'{s}' has a time zone offset; local timestamps are written without one"
            ));
        }
        (None, false) => {
            return Err(format!(
                "'{s}' has no time zone offset (add Z or +HH:MM, as RFC 3339 requires)"
            ));
        }
        (o, _) => o.unwrap_or(0),
    };
    let tod = parse_time(time)?;
    Ok(
        i128::from(days) * 86_400_000_000_000 + i128::from(tod)
            - i128::from(offset) * 1_000_000_000,
    )
}

/// Whether `s` is a canonical textual UUID (8-4-4-4-12 hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Whether a JSON string for a `decimal` is meant as a number rather than Avro's byte string:
/// an optional sign, digits, a decimal point and at most `scale` fraction digits.
pub(crate) fn looks_numeric(s: &str, scale: u32) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    match body.split_once('.') {
        Some((i, f)) => {
            !i.is_empty()
                && !f.is_empty()
                && f.len() <= scale as usize
                && i.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// A plain decimal literal (`-12.345`, no exponent) -> unscaled value at `scale`.
pub(crate) fn parse_decimal(text: &str, scale: u32) -> Result<i128, String> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a decimal number"));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a decimal number"));
    }
    let frac_sig = frac.trim_end_matches('0');
    if frac_sig.len() > scale as usize {
        return Err(format!(
            "{text} has more than {scale} digits after the point (the schema's scale); it can't be written without rounding"
        ));
    }
    let too_big = || format!("{text} has too many digits (at most 38 are supported)");
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac_sig.bytes()) {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(b - b'0')))
            .ok_or_else(too_big)?;
    }
    // Scaling up by 10^pad: zero stays zero whatever the scale; anything else overflows an
    // i128 past 38 zeros, so a scale of billions costs no more than one of 38.
    let pad = scale as usize - frac_sig.len();
    if v != 0 {
        let pad = u32::try_from(pad).map_err(|_| too_big())?;
        v = 10i128
            .checked_pow(pad)
            .and_then(|p| v.checked_mul(p))
            .ok_or_else(too_big)?;
    }
    Ok(if neg { -v } else { v })
}

/// The number of decimal digits of `|v|` (0 has one digit).
pub(crate) fn digit_count(v: i128) -> u32 {
    let mut u = v.unsigned_abs();
    let mut n = 1;
    while u >= 10 {
        u /= 10;
        n += 1;
    }
    n
}

/// Minimal big-endian two's complement bytes of `v` (Java's `BigInteger.toByteArray`).
pub(crate) fn twos_complement(v: i128) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut start = 0;
    while start < b.len() - 1 {
        let (cur, next) = (b[start], b[start + 1]);
        if (cur == 0 && next & 0x80 == 0) || (cur == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b[start..].to_vec()
}
