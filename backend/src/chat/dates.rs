//! Due-date words of everyday English, read against an injected "today" so the parser is
//! deterministic: today / tonight / tomorrow / the day after tomorrow, weekdays (`friday`, `this
//! friday`: on or after today; `next friday`: after today), `next week` (its Monday), `this
//! weekend`, `in 3 days` / `in a week` / `in two weeks`, ISO dates and `dec 24` / `24 december`
//! (this year, or next year once passed).

use time::{Date, Duration, Month, Weekday};

/// A date phrase found at the start of `words`: the date and how many words it took.
pub fn parse_date(words: &[&str], today: Date) -> Option<(Date, usize)> {
    let word = |i: usize| words.get(i).copied().unwrap_or("");
    let days = |n: i64| today.checked_add(Duration::days(n));
    match (word(0), word(1), word(2), word(3)) {
        ("the", "day", "after", "tomorrow") => return days(2).map(|d| (d, 4)),
        ("day", "after", "tomorrow", _) => return days(2).map(|d| (d, 3)),
        ("today" | "tonight", ..) => return Some((today, 1)),
        ("this", "evening" | "afternoon" | "morning", ..) => return Some((today, 2)),
        ("tomorrow" | "tmrw" | "tmr", ..) => return days(1).map(|d| (d, 1)),
        ("next", "week", ..) => return on_or_after(days(1)?, Weekday::Monday).map(|d| (d, 2)),
        ("this" | "the", "weekend", ..) => return on_or_after(today, Weekday::Saturday).map(|d| (d, 2)),
        ("weekend", ..) => return on_or_after(today, Weekday::Saturday).map(|d| (d, 1)),
        ("in", n, unit, _) => {
            let count = number(n)?;
            let per = match unit {
                "day" | "days" => 1,
                "week" | "weeks" => 7,
                _ => return None,
            };
            return days(count * per).map(|d| (d, 3));
        }
        _ => {}
    }
    if let Some(day) = weekday(word(0)) {
        return on_or_after(today, day).map(|d| (d, 1));
    }
    if let ("this" | "on", Some(day)) = (word(0), weekday(word(1))) {
        return on_or_after(today, day).map(|d| (d, 2));
    }
    if let ("next", Some(day)) = (word(0), weekday(word(1))) {
        return on_or_after(days(1)?, day).map(|d| (d, 2));
    }
    if let Some(date) = iso(word(0)) {
        return Some((date, 1));
    }
    calendar(words, today)
}

/// `dec 24`, `december 24th`, `24 dec`, `24th of december`, each optionally followed by a year.
fn calendar(words: &[&str], today: Date) -> Option<(Date, usize)> {
    let word = |i: usize| words.get(i).copied().unwrap_or("");
    let (month, day, used) = if let (Some(month), Some(day)) = (month(word(0)), day_number(word(1))) {
        (month, day, 2)
    } else if let (Some(day), "of", Some(month)) = (day_number(word(0)), word(1), month(word(2))) {
        (month, day, 3)
    } else if let (Some(day), Some(month)) = (day_number(word(0)), month(word(1))) {
        (month, day, 2)
    } else {
        return None;
    };
    if let Some(year) = word(used).parse::<i32>().ok().filter(|y| (2000..=2999).contains(y)) {
        return Date::from_calendar_date(year, month, day).ok().map(|d| (d, used + 1));
    }
    let this_year = Date::from_calendar_date(today.year(), month, day).ok()?;
    if this_year >= today {
        Some((this_year, used))
    } else {
        Date::from_calendar_date(today.year() + 1, month, day)
            .ok()
            .map(|d| (d, used))
    }
}

/// The first `day` on or after `from`.
pub fn on_or_after(from: Date, day: Weekday) -> Option<Date> {
    let ahead =
        (i64::from(day.number_days_from_monday()) - i64::from(from.weekday().number_days_from_monday())).rem_euclid(7);
    from.checked_add(Duration::days(ahead))
}

/// `2030-12-31`.
pub fn iso(word: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(word, &format).ok()
}

/// `3`, `three`, `a`/`an` (one).
fn number(word: &str) -> Option<i64> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    ];
    match word {
        "a" | "an" => Some(1),
        "couple" => Some(2),
        _ => word
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=3650).contains(n))
            .or_else(|| WORDS.iter().position(|w| *w == word).map(|i| i as i64 + 1)),
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word {
        // Only abbreviations that are not also everyday words ("sun", "sat", "wed", "mon").
        "monday" => Weekday::Monday,
        "tuesday" | "tue" | "tues" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" | "thu" | "thur" | "thurs" => Weekday::Thursday,
        "friday" | "fri" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

fn month(word: &str) -> Option<Month> {
    const NAMES: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    // A name or an abbreviation of at least three letters (`dec`, `sept`).
    let index = NAMES
        .iter()
        .position(|name| word.len() >= 3 && name.starts_with(word))?;
    Month::try_from(index as u8 + 1).ok()
}

/// `24`, `24th`, `1st`, `2nd`, `3rd`.
fn day_number(word: &str) -> Option<u8> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse::<u8>().ok().filter(|d| (1..=31).contains(d))
}

/// The Sunday that ends the week of `today` (weeks run Monday to Sunday).
pub fn end_of_week(today: Date) -> Option<Date> {
    on_or_after(today, Weekday::Sunday)
}
