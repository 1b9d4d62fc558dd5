//! Paths from untrusted input, checked before use: S3 locations (and whether one lies inside an allowed
//! prefix) and repository-relative paths (no traversal, no absolute paths, no odd characters).

use std::fmt;

/// An `s3://bucket/key` location with a conservative alphabet and no empty, `.` or `..` segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// The key or key prefix, without a leading `/` (may be empty).
    pub key: String,
}

/// Characters S3 documents as safe in keys, plus `=` (Hive-style partitions).
fn key_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!-_.*'()/=".contains(c)
}

impl S3Location {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{text:?} is not an s3:// URI"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.as_bytes()[0].is_ascii_alphanumeric()
            && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
            && !bucket.contains("..");
        if !bucket_ok {
            return Err(format!("{text:?} has an invalid bucket name {bucket:?}"));
        }
        if key.len() > 1024 {
            return Err(format!("{text:?} is longer than S3 allows"));
        }
        if let Some(c) = key.chars().find(|c| !key_char_ok(*c)) {
            return Err(format!(
                "{text:?} contains {c:?}; use letters, digits and ! - _ . * ' ( ) / = only"
            ));
        }
        let trimmed = key.strip_suffix('/').unwrap_or(key);
        if !trimmed.is_empty()
            && trimmed
                .split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        {
            return Err(format!("{text:?} has an empty, `.` or `..` path segment"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// This location as a prefix that matches whole segments only (`data/` does not contain `database/`).
    pub fn as_prefix(&self) -> S3Location {
        let mut key = self.key.clone();
        if !key.is_empty() && !key.ends_with('/') {
            key.push('/');
        }
        S3Location {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// True when `self` lies inside `prefix` (taken as a whole-segment prefix).
    pub fn is_within(&self, prefix: &S3Location) -> bool {
        let p = prefix.as_prefix();
        self.bucket == p.bucket && (self.key.starts_with(&p.key) || self.as_prefix().key == p.key)
    }

    /// A child location: `join("model/job")` on `s3://b/out/` is `s3://b/out/model/job`.
    pub fn join(&self, child: &str) -> S3Location {
        let mut key = self.as_prefix().key;
        key.push_str(child.trim_start_matches('/'));
        S3Location {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Checks a path relative to a model folder (`src`, `train.py`, `lib/util.py`): no absolute path, no
/// `.`/`..` segment, no backslash, only `[A-Za-z0-9._-]` in segments. `.` alone means the folder itself
/// and normalises to the empty path.
pub fn relative_path(text: &str) -> Result<String, String> {
    if text == "." || text == "./" {
        return Ok(String::new());
    }
    if text.starts_with('/') {
        return Err(format!(
            "{text:?} is absolute; give a path inside the model folder"
        ));
    }
    if text.len() > 256 {
        return Err(format!("{text:?} is longer than 256 characters"));
    }
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    let mut segments = Vec::new();
    for seg in trimmed.split('/') {
        if seg == ".." {
            return Err(format!("{text:?} leaves the model folder (`..`)"));
        }
        if seg.is_empty() || seg == "." {
            return Err(format!("{text:?} has an empty or `.` segment"));
        }
        if let Some(c) = seg
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
        {
            return Err(format!(
                "{text:?} contains {c:?}; use letters, digits, `.`, `_`, `-` and `/` only"
            ));
        }
        segments.push(seg);
    }
    Ok(segments.join("/"))
}

/// `a/b` joined with `c` (either may be empty).
pub fn join(parent: &str, child: &str) -> String {
    match (parent.is_empty(), child.is_empty()) {
        (true, _) => child.to_string(),
        (_, true) => parent.to_string(),
        _ => format!("{parent}/{child}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations() {
        let l = S3Location::parse("s3://studio-ops-data/churn/train/").unwrap();
        assert_eq!(l.bucket, "studio-ops-data");
        assert_eq!(l.key, "churn/train/");
        assert_eq!(l.to_string(), "s3://studio-ops-data/churn/train/");
        assert!(S3Location::parse("s3://b-1/year=2024/x.csv").is_ok());
        for bad in [
            "https://b/x",
            "s3://B/x",
            "s3://ab/x",
            "s3://bucket/../other",
            "s3://bucket/a//b",
            "s3://bucket/a/./b",
            "s3://bucket/a b",
            "s3://bucket/caf\u{e9}",
            "s3://bucket/a%2e%2e/b",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_is_by_whole_segment() {
        let allowed = S3Location::parse("s3://data/team").unwrap();
        let inside = |u: &str| S3Location::parse(u).unwrap().is_within(&allowed);
        assert!(inside("s3://data/team/churn/"));
        assert!(inside("s3://data/team/"));
        assert!(inside("s3://data/team"));
        assert!(!inside("s3://data/teamwork/x"));
        assert!(!inside("s3://data/other/team/x"));
        assert!(!inside("s3://data2/team/x"));
        let whole = S3Location::parse("s3://data").unwrap();
        assert!(
            S3Location::parse("s3://data/anything")
                .unwrap()
                .is_within(&whole)
        );
        assert_eq!(
            S3Location::parse("s3://out/models")
                .unwrap()
                .join("m/j")
                .to_string(),
            "s3://out/models/m/j"
        );
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative_path("src").unwrap(), "src");
        assert_eq!(relative_path("src/").unwrap(), "src");
        assert_eq!(relative_path(".").unwrap(), "");
        assert_eq!(relative_path("lib/train_v2.py").unwrap(), "lib/train_v2.py");
        for bad in [
            "../x",
            "a/../../b",
            "/etc/passwd",
            "a//b",
            "a/./b",
            "a\\b",
            "s rc",
            "",
            "\u{2024}\u{2024}/x",
        ] {
            assert!(relative_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(join("models/a", "src"), "models/a/src");
        assert_eq!(join("", "src"), "src");
        assert_eq!(join("models/a", ""), "models/a");
    }
}
