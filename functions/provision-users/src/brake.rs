//! The safety brake: a reconcile that would deprovision too many managed profiles at once does nothing,
//! because an identity-store outage or a wrong group id looks exactly like "everybody left".

use serde::{Deserialize, Serialize};

/// The brake's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brake {
    /// At most this share (percent, 0–100) of the managed profiles may go in one reconcile. A single
    /// deprovision is always allowed by this rule, so that a team of three can lose one member.
    pub max_share_percent: u32,
    /// At most this many profiles may go in one reconcile (0 = never deprovision automatically).
    pub max_count: u32,
}

impl Default for Brake {
    fn default() -> Self {
        Self {
            max_share_percent: 20,
            max_count: 10,
        }
    }
}

/// What the brake says about a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    Blocked { reason: String },
}

/// The brake's verdict as a preview answers it: `{"blocked": false}` or `{"blocked": true, "reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrakeAnswer {
    pub blocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<Verdict> for BrakeAnswer {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Proceed => Self {
                blocked: false,
                reason: None,
            },
            Verdict::Blocked { reason } => Self {
                blocked: true,
                reason: Some(reason),
            },
        }
    }
}

impl Brake {
    /// Judges deprovisioning `count` of `managed` managed profiles.
    pub fn check(&self, count: u32, managed: u32) -> Verdict {
        self.judge(count, managed, "deprovision", "managed profiles")
    }

    /// Judges removing `count` of `managed` team shared spaces (their files go with them), by the same limits:
    /// one space alone always passes; several at once only within the share.
    pub fn check_shared_spaces(&self, count: u32, managed: u32) -> Verdict {
        self.judge(count, managed, "remove", "team shared spaces")
    }

    fn judge(&self, count: u32, managed: u32, verb: &str, what: &str) -> Verdict {
        if count == 0 {
            return Verdict::Proceed;
        }
        let share = if managed == 0 {
            100
        } else {
            // Rounded to a whole percent for the message; the comparison below is exact.
            (u64::from(count) * 100).div_ceil(u64::from(managed))
        };
        if count > self.max_count {
            return Verdict::Blocked {
                reason: format!(
                    "would {verb} {count} of {managed} {what}, above the limit of {} at once",
                    self.max_count
                ),
            };
        }
        let over_share =
            u64::from(count) * 100 > u64::from(self.max_share_percent) * u64::from(managed);
        if count > 1 && over_share {
            return Verdict::Blocked {
                reason: format!(
                    "would {verb} {count} of {managed} {what} ({share}%), above the {}% brake",
                    self.max_share_percent
                ),
            };
        }
        Verdict::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_team_spaces_is_braked_like_deprovisioning() {
        let b = Brake::default();
        assert_eq!(b.check_shared_spaces(1, 2), Verdict::Proceed);
        let Verdict::Blocked { reason } = b.check_shared_spaces(2, 3) else {
            panic!("two of three spaces at once must stop")
        };
        assert_eq!(
            reason,
            "would remove 2 of 3 team shared spaces (67%), above the 20% brake"
        );
    }

    fn blocked(v: &Verdict) -> bool {
        matches!(v, Verdict::Blocked { .. })
    }

    #[test]
    fn table() {
        let b = Brake::default();
        // (to deprovision, managed, blocked?)
        let cases = [
            (0, 0, false),
            (0, 100, false),
            (1, 1, false), // a single deprovision always passes the share rule
            (1, 3, false),
            (2, 3, true),   // 67 %
            (2, 10, false), // exactly 20 %
            (3, 10, true),  // 30 %
            (9, 12, true),
            (10, 50, false), // 20 % and at the count limit
            (11, 100, true), // 11 % but above 10 at once
            (20, 100, true),
        ];
        for (count, managed, expect) in cases {
            assert_eq!(
                blocked(&b.check(count, managed)),
                expect,
                "{count} of {managed}"
            );
        }
    }

    #[test]
    fn reasons_say_why() {
        let b = Brake::default();
        assert_eq!(
            b.check(9, 12),
            Verdict::Blocked {
                reason: "would deprovision 9 of 12 managed profiles (75%), above the 20% brake"
                    .into()
            }
        );
        assert_eq!(
            b.check(11, 1000),
            Verdict::Blocked {
                reason:
                    "would deprovision 11 of 1000 managed profiles, above the limit of 10 at once"
                        .into()
            }
        );
    }

    #[test]
    fn zero_count_limit_never_deprovisions_and_full_share_only_counts() {
        let never = Brake {
            max_share_percent: 100,
            max_count: 0,
        };
        assert!(blocked(&never.check(1, 100)));
        assert_eq!(never.check(0, 100), Verdict::Proceed);
        let count_only = Brake {
            max_share_percent: 100,
            max_count: 1000,
        };
        assert_eq!(count_only.check(100, 100), Verdict::Proceed);
        let strict = Brake {
            max_share_percent: 0,
            max_count: 10,
        };
        assert_eq!(strict.check(1, 100), Verdict::Proceed);
        assert!(blocked(&strict.check(2, 100)));
    }
}
