//! UTC timestamps the way Kubernetes and people read them, through the `time` crate: the
//! workflow compares them, names folders after them and labels images with them.

use time::{OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description};

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The moment of a Unix time (the epoch for one out of range).
fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `20250310T100000Z`: sorts by time and is safe in a file name.
pub fn compact(unix: i64) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    at(unix).format(format).unwrap_or_default()
}

/// `2025-03-10 10:00:00 UTC`, for people.
pub fn readable(unix: i64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at(unix).format(format).unwrap_or_default()
}

/// `2025-03-10T10:00:00Z` (RFC 3339, whole seconds), as image labels carry it.
pub fn rfc3339(unix: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at(unix).format(format).unwrap_or_default()
}

/// Seconds since the epoch of an RFC 3339 time as the API server writes it
/// (`2025-03-10T10:00:00Z`, `2025-03-10T10:00:00.123456Z`, `...+01:00`); `None` if unreadable.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_timestamps_are_read() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2025-03-10T10:00:00Z"), Some(1_741_600_800));
        assert_eq!(parse_rfc3339("2025-03-10T10:00:00.123456Z"), Some(1_741_600_800));
        assert_eq!(parse_rfc3339("2025-03-10T11:00:00+01:00"), Some(1_741_600_800));
        assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), Some(1_709_251_199));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2025-13-10T10:00:00Z"), None);
    }

    #[test]
    fn unix_times_are_written_back() {
        assert_eq!(compact(1_741_600_800), "20250310T100000Z");
        assert_eq!(readable(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(compact(0), "19700101T000000Z");
        for unix in [0, 951_782_400, 1_709_251_199, 4_102_444_800] {
            let text = rfc3339(unix);
            assert_eq!(parse_rfc3339(&text), Some(unix), "{text}");
        }
    }
}
