//! The name rules and small parsers several functions need, in one copy each: SageMaker domain ids, commit ids as
//! people read them, ARNs, the glob patterns admins write in settings, and Studio profile names from user names.

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

/// SageMaker's DomainId pattern `d-(-*[a-z0-9]){1,61}` (`reference/FACTS.md`): `d-`, then at most 61 lower-case
/// letters, digits and hyphens that do not end in a hyphen.
pub fn is_domain_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("d-") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 61
        && rest
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !rest.ends_with('-')
}

/// How many hex digits of a commit id people read (what `git log --oneline` shows).
pub const SHORT_COMMIT: usize = 7;

/// The first [`SHORT_COMMIT`] hex digits of a commit id, lower-cased; `None` for anything that is not a commit id
/// of at least that many hex digits (the caller decides what stands in for it).
pub fn short_commit(commit: &str) -> Option<String> {
    (commit.len() >= SHORT_COMMIT && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| commit[..SHORT_COMMIT].to_ascii_lowercase())
}

/// The six parts of an ARN (`arn:partition:service:region:account:resource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    /// Splits an ARN; `None` unless it has the six parts, an `aws*` partition, a service, a 12-digit account (or
    /// none, as S3 ARNs have) and a resource. The resource keeps its own `:` and `/`.
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parts = text.splitn(6, ':');
        let (prefix, partition, service, region, account, resource) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        let account_ok = account.is_empty()
            || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
        (prefix == "arn"
            && partition.starts_with("aws")
            && !service.is_empty()
            && account_ok
            && !resource.is_empty())
        .then_some(Self {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The session name of an assumed-role ARN (`assumed-role/Role/ana@example.com` → `ana@example.com`), or the
    /// last part of any other resource (an IAM user's name).
    pub fn principal_name(&self) -> Option<&'a str> {
        let name = match self.resource.strip_prefix("assumed-role/") {
            Some(rest) => rest.split('/').nth(1)?,
            None => self.resource.rsplit('/').next()?,
        };
        (!name.is_empty()).then_some(name)
    }
}

/// Glob match: `*` matches any run of characters (`/` included, none included), `?` exactly one.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    WildMatch::new(pattern).matches(text)
}

/// [`glob_matches`] ignoring case (instance-type patterns such as `ml.G5.*`).
pub fn glob_matches_ignoring_case(pattern: &str, text: &str) -> bool {
    WildMatch::new_case_insensitive(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn domain_ids_follow_sagemakers_pattern() {
        for ok in [
            "d-studioops0001",
            "d-a",
            "d-a-b",
            &format!("d-{}", "a".repeat(61)),
        ] {
            assert!(is_domain_id(ok), "{ok}");
        }
        for bad in [
            "",
            "d-",
            "d-A1",
            "d-a-",
            "x-abc",
            "d-a_b",
            &format!("d-{}", "a".repeat(62)),
        ] {
            assert!(!is_domain_id(bad), "{bad}");
        }
    }

    #[test]
    fn short_commits_are_seven_lower_hex_digits_or_none() {
        assert_eq!(
            short_commit("3F2A9C1D0E4B5A6978C1D2E3F4A5B6C7D8E9F001").as_deref(),
            Some("3f2a9c1")
        );
        assert_eq!(short_commit("3f2a9c1").as_deref(), Some("3f2a9c1"));
        for bad in ["", "3f2a9c", "not-a-commit-id", "3f2a9c1\n<script>"] {
            assert_eq!(short_commit(bad), None, "{bad}");
        }
    }

    #[test]
    fn arns_split_into_their_parts() {
        let role = Arn::parse("arn:aws:iam::123456789012:role/StudioExecution").expect("role arn");
        assert_eq!((role.service, role.account), ("iam", "123456789012"));
        assert_eq!(role.resource, "role/StudioExecution");
        let sts = Arn::parse(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_DataScientist_x/ana@example.com",
        )
        .expect("sts arn");
        assert_eq!(sts.principal_name(), Some("ana@example.com"));
        let user = Arn::parse("arn:aws:iam::123456789012:user/ops/bob").expect("user arn");
        assert_eq!(user.principal_name(), Some("bob"));
        let topic = Arn::parse("arn:aws-cn:sns:cn-north-1:123456789012:alerts:extra").expect("sns");
        assert_eq!(topic.resource, "alerts:extra");
        assert!(Arn::parse("arn:aws:s3:::bucket").is_some());
        for bad in [
            "",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:",
            "arn:foo:iam::123456789012:role/x",
            "nra:aws:iam::123456789012:role/x",
            "arn:aws:iam::123456789012",
        ] {
            assert!(Arn::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob_matches("release/*", "release/2026/12"));
        assert!(glob_matches("main", "main"));
        assert!(!glob_matches("main", "mainline"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches_ignoring_case("ml.G5.*", "ml.g5.xlarge"));
        assert!(glob_matches_ignoring_case("ml.?5.*", "ml.g5.xlarge"));
        assert!(!glob_matches_ignoring_case("ml.p*", "ml.g5.xlarge"));
    }

    proptest! {
        #[test]
        fn a_text_matches_itself_and_the_star(text in "[a-z0-9./-]{0,40}") {
            prop_assert!(glob_matches(&text, &text));
            prop_assert!(glob_matches("*", &text));
            let (pattern, longer) = (format!("{text}*"), format!("{text}tail"));
            prop_assert!(glob_matches(&pattern, &longer));
        }
    }
}

// ----- Studio profile names from user names (provision-users names profiles; train-on-push finds a commit
// author's profile by the same rule) -----

/// SageMaker's limit for user-profile and space names.
pub const MAX_NAME_LEN: usize = 63;
/// Which part of the user name makes the profile name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameStyle {
    /// The whole user name: `ana.silva@example.com` → `ana-silva-example-com`.
    #[default]
    Full,
    /// Only the part before `@`: `ana.silva@example.com` → `ana-silva`.
    LocalPart,
}

impl std::str::FromStr for NameStyle {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "full" => Ok(Self::Full),
            "local-part" => Ok(Self::LocalPart),
            _ => Err(()),
        }
    }
}

/// Whether SageMaker accepts `name` as a user-profile or space name.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// The readable part of a name: transliterated to ASCII, lower-cased, every run of other characters
/// turned into one `-`, no `-` at either end, at most `max` characters. May be empty.
pub fn slug(user_name: &str, style: NameStyle, max: usize) -> String {
    let source = match style {
        NameStyle::Full => user_name,
        NameStyle::LocalPart => match user_name.rsplit_once('@') {
            Some((local, _)) if !local.trim().is_empty() => local,
            _ => user_name,
        },
    };
    let ascii = deunicode::deunicode(source);
    let mut out = String::with_capacity(ascii.len().min(max));
    let mut pending_dash = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                if out.len() + 1 >= max {
                    break;
                }
                out.push('-');
            }
            pending_dash = false;
            if out.len() >= max {
                break;
            }
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out
}
