//! Studio names derived from Identity Center user names: always valid for SageMaker
//! (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`), lower-case (SageMaker treats names case-insensitively), readable
//! where the user name allows, and made unique deterministically with a hash of the immutable user id.

use std::collections::HashSet;

pub use studio_ops_shared::names::{MAX_NAME_LEN, NameStyle, is_valid_name, slug};

use sha2::{Digest, Sha256};

/// What a profile's private space name adds to the profile name.
const SPACE_SUFFIX: &str = "-private";
/// Hex digits of the user-id hash in a disambiguated name, first and second try.
const SHORT_HASH: usize = 8;
const LONG_HASH: usize = 16;

/// The first `len` hex digits of SHA-256(`input`).
pub fn short_hash(input: &str, len: usize) -> String {
    let mut h = hex::encode(Sha256::digest(input.as_bytes()));
    h.truncate(len);
    h
}

/// The names a user may get, best first: the readable slug, then the slug with a short and a long hash
/// of the user id. Every candidate is valid and they are pairwise distinct.
pub fn candidates(user_name: &str, user_id: &str, style: NameStyle) -> Vec<String> {
    let with_hash = |len: usize| {
        let stem = slug(user_name, style, MAX_NAME_LEN - len - 1);
        let stem = if stem.is_empty() {
            "user".to_string()
        } else {
            stem
        };
        format!("{stem}-{}", short_hash(user_id, len))
    };
    let plain = slug(user_name, style, MAX_NAME_LEN);
    let mut out = Vec::with_capacity(3);
    if !plain.is_empty() {
        out.push(plain);
    }
    out.push(with_hash(SHORT_HASH));
    out.push(with_hash(LONG_HASH));
    out
}

/// The first candidate nobody has taken (`taken` holds lower-cased names), or `None` if all are.
pub fn choose(
    user_name: &str,
    user_id: &str,
    style: NameStyle,
    taken: &HashSet<String>,
) -> Option<String> {
    candidates(user_name, user_id, style)
        .into_iter()
        .find(|c| !taken.contains(&c.to_ascii_lowercase()))
}

/// The name of a profile's private JupyterLab space: the profile name (shortened if needed) + `-private`.
pub fn private_space_name(profile_name: &str) -> String {
    let room = MAX_NAME_LEN - SPACE_SUFFIX.len();
    let mut stem: String = profile_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(room)
        .collect::<String>()
        .to_ascii_lowercase();
    while stem.ends_with('-') {
        stem.pop();
    }
    let stem = stem.trim_start_matches('-');
    if stem.is_empty() {
        format!(
            "space-{}{SPACE_SUFFIX}",
            short_hash(profile_name, SHORT_HASH)
        )
    } else {
        format!("{stem}{SPACE_SUFFIX}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tricky_user_names() {
        let id = "e18ba510-1001-70f0-3861-d4cfe87e1540";
        let h8 = short_hash(id, 8);
        // (user name, style, expected first candidate)
        let table: &[(&str, NameStyle, String)] = &[
            (
                "ana.silva@example.com",
                NameStyle::Full,
                "ana-silva-example-com".into(),
            ),
            (
                "ana.silva@example.com",
                NameStyle::LocalPart,
                "ana-silva".into(),
            ),
            (
                "Ana.Silva@Example.COM",
                NameStyle::Full,
                "ana-silva-example-com".into(),
            ),
            (
                "li_wei+ds@example.com",
                NameStyle::Full,
                "li-wei-ds-example-com".into(),
            ),
            (
                "li_wei+ds@example.com",
                NameStyle::LocalPart,
                "li-wei-ds".into(),
            ),
            (
                "josé.núñez@example.es",
                NameStyle::LocalPart,
                "jose-nunez".into(),
            ),
            ("Łukasz Żółć", NameStyle::Full, "lukasz-zolc".into()),
            ("张伟", NameStyle::Full, "zhang-wei".into()),
            ("--ana--", NameStyle::Full, "ana".into()),
            ("a", NameStyle::Full, "a".into()),
            ("007", NameStyle::Full, "007".into()),
            ("o'brien", NameStyle::Full, "o-brien".into()),
            ("DOMAIN\\jdoe", NameStyle::Full, "domain-jdoe".into()),
            ("@example.com", NameStyle::LocalPart, "example-com".into()),
            ("   ", NameStyle::Full, format!("user-{h8}")),
            ("!!!", NameStyle::Full, format!("user-{h8}")),
            ("", NameStyle::Full, format!("user-{h8}")),
        ];
        for (user, style, expected) in table {
            let c = candidates(user, id, *style);
            assert_eq!(&c[0], expected, "user name {user:?} ({style:?})");
            assert!(c.iter().all(|n| is_valid_name(n)), "{c:?}");
        }
    }

    #[test]
    fn long_names_are_cut_at_63_without_trailing_dash() {
        let long = format!("{}.{}@example.com", "a".repeat(62), "b".repeat(10));
        let c = candidates(&long, "u1", NameStyle::Full);
        assert_eq!(c[0], "a".repeat(62)); // no room for "-b": the dash is not left dangling
        let long = format!("{}.{}@example.com", "a".repeat(61), "b".repeat(10));
        assert_eq!(
            candidates(&long, "u1", NameStyle::Full)[0],
            "a".repeat(61) + "-b"
        );
        assert!(
            c.iter()
                .all(|n| n.len() <= MAX_NAME_LEN && is_valid_name(n))
        );
        let c = candidates(&"x".repeat(200), "u1", NameStyle::Full);
        assert_eq!(c[0].len(), 63);
        assert_eq!(c[1].len(), 63);
        assert!(c[1].ends_with(&format!("-{}", short_hash("u1", 8))));
    }

    #[test]
    fn collisions_resolve_with_the_user_id_hash_case_insensitively() {
        let taken: HashSet<String> = ["ana-silva-example-com".to_string()].into();
        let picked = choose("Ana.Silva@example.com", "u-2", NameStyle::Full, &taken).unwrap();
        assert_eq!(
            picked,
            format!("ana-silva-example-com-{}", short_hash("u-2", 8))
        );
        // Deterministic: the same inputs give the same name.
        assert_eq!(
            choose("Ana.Silva@example.com", "u-2", NameStyle::Full, &taken),
            Some(picked.clone())
        );
        // Another user colliding on the same slug gets a different hash.
        let other = choose("ana_silva@example.com", "u-3", NameStyle::Full, &taken).unwrap();
        assert_ne!(other, picked);
        // All candidates taken: no name.
        let all: HashSet<String> = candidates("ana", "u-4", NameStyle::Full)
            .into_iter()
            .collect();
        assert_eq!(choose("ana", "u-4", NameStyle::Full, &all), None);
    }

    #[test]
    fn private_space_names() {
        assert_eq!(private_space_name("ana-silva"), "ana-silva-private");
        let long = "a".repeat(54) + "-" + &"b".repeat(8);
        let s = private_space_name(&long);
        assert_eq!(s, format!("{}-private", "a".repeat(54)));
        assert!(is_valid_name(&s));
        assert!(is_valid_name(&private_space_name(&"x".repeat(63))));
        assert!(is_valid_name(&private_space_name("---")));
    }

    #[test]
    fn name_style_parses() {
        assert_eq!("full".parse(), Ok(NameStyle::Full));
        assert_eq!("local-part".parse(), Ok(NameStyle::LocalPart));
        assert_eq!("Full".parse::<NameStyle>(), Err(()));
    }

    proptest! {
        #[test]
        fn every_candidate_is_valid_and_distinct(user in "\\PC{0,120}", id in "[a-f0-9-]{1,40}", local in any::<bool>()) {
            let style = if local { NameStyle::LocalPart } else { NameStyle::Full };
            let c = candidates(&user, &id, style);
            prop_assert!(c.len() >= 2);
            for n in &c {
                prop_assert!(is_valid_name(n), "{:?} from {:?}", n, user);
                prop_assert_eq!(n.to_ascii_lowercase(), n.clone());
            }
            let unique: HashSet<_> = c.iter().collect();
            prop_assert_eq!(unique.len(), c.len());
        }

        #[test]
        fn chosen_name_is_free_and_valid(user in "[ -~]{0,80}", id in "[a-f0-9]{8}", taken_plain in any::<bool>()) {
            let mut taken = HashSet::new();
            if taken_plain {
                taken.insert(slug(&user, NameStyle::Full, MAX_NAME_LEN));
            }
            let n = choose(&user, &id, NameStyle::Full, &taken).unwrap();
            prop_assert!(is_valid_name(&n));
            prop_assert!(!taken.contains(&n));
        }

        #[test]
        fn space_names_are_valid(profile in "[a-z0-9-]{1,63}") {
            prop_assert!(is_valid_name(&private_space_name(&profile)));
        }
    }
}
