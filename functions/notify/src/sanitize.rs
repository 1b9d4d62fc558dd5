//! Makes event text safe to show: one line, no control or bidi characters, bounded length, ASCII subjects,
//! percent-encoded URL segments. Every field that reaches a message passes through here.

/// SNS rejects subjects of 100 characters or more.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// SNS rejects empty attribute values; long ones only bloat every delivery.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

/// Characters that render invisibly or reorder text (zero-width, bidi overrides and isolates, BOM):
/// in a name they can make `ana` look like someone else.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

/// Whitespace that would break a line or a column: newlines, tabs, Unicode line/paragraph separators.
fn is_breaking_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{0085}')
}

/// One line of display text: control and invisible characters dropped, every run of whitespace (including
/// line breaks) a single space, trimmed, and cut to `max_chars` characters with `…` when longer.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(4)));
    let mut pending_space = false;
    for c in text.chars() {
        if is_breaking_space(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    clip(&out, max_chars, "…")
}

/// Cuts `text` to at most `max_chars` characters, ending with `marker` when it was cut.
pub fn clip(text: &str, max_chars: usize, marker: &str) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let keep = max_chars.saturating_sub(marker.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push_str(marker);
    out
}

/// Latin letters with diacritics and typographic punctuation folded to ASCII by `deunicode`, so that `José`
/// stays readable in a subject; other scripts are not transliterated (`模型` would become a guess in another
/// language: `?` says honestly that something was there).
fn fold_to_ascii(c: char) -> Option<&'static str> {
    let latin_or_punctuation = matches!(c,
        '\u{00C0}'..='\u{024F}'   // Latin-1 letters, Latin Extended-A and -B
        | '\u{1E00}'..='\u{1EFF}' // Latin Extended Additional (Vietnamese and others)
        | '\u{2010}'..='\u{2027}' // dashes, quotes, ellipsis
    );
    if !latin_or_punctuation || (!c.is_alphabetic() && c < '\u{2010}') {
        return None;
    }
    match c {
        // deunicode writes an em dash as `--`; a subject keeps the single hyphen it always showed.
        '—' => Some("-"),
        _ => deunicode::deunicode_char(c).filter(|s| !s.is_empty() && s.is_ascii()),
    }
}

/// A piece of a subject: one line, ASCII only (folded where possible, `?` otherwise), at most `max_chars`.
/// Subjects are ASCII because e-mail subject headers and older SNS validation reject anything else.
pub fn subject_piece(text: &str, max_chars: usize) -> String {
    let line = one_line(text, usize::MAX);
    let mut ascii = String::with_capacity(line.len());
    for c in line.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else if let Some(folded) = fold_to_ascii(c) {
            ascii.push_str(folded);
        } else {
            ascii.push('?');
        }
    }
    clip(&ascii, max_chars, "...")
}

/// The final subject: sanitized as a whole and kept under SNS's limit; never empty.
pub fn subject(text: &str) -> String {
    let s = subject_piece(text, MAX_SUBJECT_CHARS);
    if s.is_empty() {
        "studio-ops alert".to_string()
    } else {
        s
    }
}

/// A message-attribute value: one line, bounded, `None` when nothing is left (SNS rejects empty values).
pub fn attribute_value(text: &str) -> Option<String> {
    let v = one_line(text, MAX_ATTRIBUTE_CHARS);
    (!v.is_empty()).then_some(v)
}

/// Percent-encodes one URL path or fragment segment (RFC 3986 unreserved characters pass).
pub fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An AWS region name such as `us-east-1` or `us-gov-west-1`; anything else never reaches a link.
pub fn is_region(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_line_flattens_and_strips() {
        assert_eq!(one_line("  a\r\n\tb  c\u{2028}d ", 80), "a b c d");
        assert_eq!(one_line("ana\u{202E}moc.live\u{200B}", 80), "anamoc.live");
        assert_eq!(one_line("\u{1b}[31mred\u{1b}[0m", 80), "[31mred[0m");
        assert_eq!(one_line("abcdefghij", 5), "abcd…");
        assert_eq!(one_line("\n\n", 5), "");
    }

    #[test]
    fn subject_pieces_are_ascii_and_folded() {
        assert_eq!(subject_piece("José Müller — ok", 80), "Jose Muller - ok");
        assert_eq!(subject_piece("模型 v3", 80), "?? v3");
        assert_eq!(
            subject_piece("Łukasz Dvořák, Nguyễn – “ok” ‘x’…", 80),
            "Lukasz Dvorak, Nguyen - \"ok\" 'x'..."
        );
        assert_eq!(subject_piece("ÆØß ı © × €", 80), "AEOss i ? ? ?");
        assert_eq!(subject_piece("abcdefghij", 6), "abc...");
        assert_eq!(subject("\n\u{7}"), "studio-ops alert");
    }

    #[test]
    fn attribute_values_are_never_empty() {
        assert_eq!(attribute_value(" \n "), None);
        assert_eq!(attribute_value("ana\n"), Some("ana".into()));
        assert_eq!(
            attribute_value(&"x".repeat(1000)).unwrap().chars().count(),
            MAX_ATTRIBUTE_CHARS
        );
    }

    #[test]
    fn url_segments_are_encoded() {
        assert_eq!(url_segment("churn-xgboost"), "churn-xgboost");
        assert_eq!(url_segment("a b/../#x"), "a%20b%2F..%2F%23x");
        assert_eq!(url_segment("é"), "%C3%A9");
    }

    #[test]
    fn regions_and_domains() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1"] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "evil.com/x-1",
            "US-EAST-1",
            "us-east-1.evil.com",
            "u-east-1",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
        // The shared rule `links` uses for domain ids.
        use studio_ops_shared::names::is_domain_id;
        assert!(is_domain_id("d-studioops0001"));
        assert!(!is_domain_id("d-"));
        assert!(!is_domain_id("d-x.evil.com"));
        assert!(!is_domain_id("studioops"));
    }

    proptest! {
        #[test]
        fn subjects_always_fit_sns(text in any::<String>(), prefix in "\\PC{0,40}") {
            let s = subject(&format!("{prefix} {text}"));
            prop_assert!(!s.is_empty());
            prop_assert!(s.chars().count() <= MAX_SUBJECT_CHARS);
            prop_assert!(s.is_ascii());
            prop_assert!(!s.chars().any(|c| c.is_control()));
            prop_assert_eq!(s.trim(), s.as_str());
        }

        #[test]
        fn one_line_never_breaks(text in any::<String>(), max in 1usize..300) {
            let s = one_line(&text, max);
            prop_assert!(s.chars().count() <= max);
            prop_assert!(!s.chars().any(|c| c.is_control() || is_breaking_space(c) && c != ' '));
            prop_assert!(!s.chars().any(is_invisible_format));
        }
    }
}
