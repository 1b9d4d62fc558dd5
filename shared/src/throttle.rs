//! A client-side request rate limit per AWS operation. SageMaker's request quotas are per API and per account, so
//! one busy operation (ListTags in a large sweep) must not hold back the others, and no operation may exceed its own.

use std::num::NonZeroU32;

use aws_smithy_async::future::pagination_stream::PaginationStream;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Requests per second and burst allowed to each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// A limit whose burst is one second's worth of requests.
    pub fn per_second(per_second: NonZeroU32) -> Self {
        Self {
            per_second,
            burst: per_second,
        }
    }
}

/// One token bucket per operation name, all with the same [`RateLimit`].
pub struct OperationLimiter {
    rate: RateLimit,
    buckets: DefaultKeyedRateLimiter<&'static str>,
}

impl OperationLimiter {
    pub fn new(rate: RateLimit) -> Self {
        Self {
            rate,
            buckets: RateLimiter::keyed(Quota::per_second(rate.per_second).allow_burst(rate.burst)),
        }
    }

    pub fn rate(&self) -> RateLimit {
        self.rate
    }

    /// Waits until `operation` may send one request (each page of a listing is one request).
    pub async fn ready(&self, operation: &'static str) {
        self.buckets.until_key_ready(&operation).await;
    }

    /// Hands every page of an SDK paginator to `on_page`, each request first taking a token of `operation`. The
    /// paginator answers `None` after the last page without sending anything, so the token is taken only while the
    /// previous page had a `next_token`: an unused token per listing would halve the operation's rate. Stops at the
    /// first error.
    pub async fn each_page<T, E>(
        &self,
        operation: &'static str,
        mut pages: PaginationStream<Result<T, E>>,
        next_token: impl Fn(&T) -> Option<&str>,
        mut on_page: impl FnMut(T),
    ) -> Result<(), E> {
        let mut more = true;
        while more {
            self.ready(operation).await;
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page?;
            more = next_token(&page).is_some_and(|t| !t.is_empty());
            on_page(page);
        }
        Ok(())
    }

    /// Takes a token for `operation` if one is available now.
    pub fn try_ready(&self, operation: &'static str) -> bool {
        self.buckets.check_key(&operation).is_ok()
    }
}

impl std::fmt::Debug for OperationLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperationLimiter")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn each_operation_has_its_own_bucket() {
        // One request per second: the next token comes back a full second later, far beyond these few microseconds.
        let limiter = OperationLimiter::new(RateLimit {
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(2).unwrap(),
        });
        assert!(limiter.try_ready("ListTags"));
        assert!(limiter.try_ready("ListTags"));
        assert!(
            !limiter.try_ready("ListTags"),
            "the burst of 2 is spent: a third ListTags must wait"
        );
        assert!(
            limiter.try_ready("DescribeApp"),
            "a busy ListTags must not hold back DescribeApp"
        );
        assert!(limiter.try_ready("DescribeApp"));
        assert!(!limiter.try_ready("DescribeApp"));
    }

    #[test]
    fn the_burst_defaults_to_one_second_of_requests() {
        let rate = RateLimit::per_second(NonZeroU32::new(20).unwrap());
        assert_eq!(rate, limit(20, 20));
        let limiter = OperationLimiter::new(rate);
        assert_eq!((0..25).filter(|_| limiter.try_ready("X")).count(), 20);
    }

    #[tokio::test]
    async fn ready_returns_at_once_while_tokens_remain() {
        let limiter = OperationLimiter::new(limit(1, 3));
        for _ in 0..3 {
            limiter.ready("DescribeSpace").await;
        }
        assert!(!limiter.try_ready("DescribeSpace"));
    }
}
