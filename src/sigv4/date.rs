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

    pub fn from_datetime(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        let s = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        Self::parse(&s).expect("formatted date parses")
    }

    /// `YYYYMMDDTHHMMSSZ`
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, 'T' and 'Z' get in (checked in `parse`).
        std::str::from_utf8(&self.text).unwrap_or("")
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
