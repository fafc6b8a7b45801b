//! `x-amz-date` / `X-Amz-Date`: ISO 8601 basic format, `YYYYMMDD'T'HHMMSS'Z'`.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A parsed `x-amz-date`. Keeps the wire text, which the string to sign uses as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmzDate {
    text: [u8; 16],
    at: OffsetDateTime,
}

impl AmzDate {
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &b[r];
            if !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(part.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
        };
        let year = i32::try_from(num(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
        let day = u8::try_from(num(6..8)?).ok()?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms(
            u8::try_from(num(9..11)?).ok()?,
            u8::try_from(num(11..13)?).ok()?,
            u8::try_from(num(13..15)?).ok()?,
        )
        .ok()?;
        let mut text = [0u8; 16];
        text.copy_from_slice(b);
        Some(Self { text, at: PrimitiveDateTime::new(date, time).assume_utc() })
    }

    /// `at` in UTC, to the second. Panics for years outside 0..=9999, which
    /// have no `x-amz-date` form.
    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let (date, t) = (at.date(), at.time());
        let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999).expect("formatted date parses");
        let mut text = *b"00000000T000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                text[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(4, 2, u32::from(u8::from(date.month())));
        put(6, 2, u32::from(date.day()));
        put(9, 2, u32::from(t.hour()));
        put(11, 2, u32::from(t.minute()));
        put(13, 2, u32::from(t.second()));
        let whole = Time::from_hms(t.hour(), t.minute(), t.second()).expect("a valid time of day");
        Self { text, at: PrimitiveDateTime::new(date, whole).assume_utc() }
    }

    /// `YYYYMMDDTHHMMSSZ`
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' get in (checked in `parse`).
        std::str::from_utf8(&self.text).unwrap_or("")
    }

    /// [`AmzDate::as_str`]'s bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.text
    }

    /// `YYYYMMDD`, the credential scope's date.
    pub fn date(&self) -> &str {
        &self.as_str()[..8]
    }

    pub fn datetime(&self) -> OffsetDateTime {
        self.at
    }
}

impl std::fmt::Display for AmzDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        let d = AmzDate::parse("20150830T123600Z").unwrap();
        assert_eq!(d.date(), "20150830");
        assert_eq!(d.datetime().unix_timestamp(), 1_440_938_160);
        assert_eq!(AmzDate::from_datetime(d.datetime()), d);
        let odd = time::macros::datetime!(0042-03-04 05:06:07.891 +02:30);
        let f = AmzDate::from_datetime(odd);
        assert_eq!(f.as_str(), "00420304T023607Z");
        assert_eq!(AmzDate::parse(f.as_str()), Some(f));
        assert_eq!(f.datetime(), time::macros::datetime!(0042-03-04 02:36:07 UTC));
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083XT123600Z",
            "20151330T123600Z",
            "20150830T256000Z",
            "20150830T123600Z0",
        ] {
            assert!(AmzDate::parse(s).is_none(), "{s}");
        }
    }
}
