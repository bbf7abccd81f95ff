//! Random positions among the usable ones: what `Random`, `P2c` and `PeakEwma` draw.

use crate::internal::rand;
use crate::lb::random::Source;
use crate::lb::table::Table;
use crate::{Derived, Endpoints, Error, Result};

/// How many draws are made before looking for a usable position in order.
const DRAWS: usize = 4;

/// A uniformly random position of `0..n` for which `usable` is true: up to [`DRAWS`]
/// draws, then the first usable position after the last draw (wrapping round), so the
/// answer is usable whenever any position is. With none usable it is the last draw.
/// `n` must not be zero.
#[inline]
pub(crate) fn one(source: &Source, n: usize, usable: impl Fn(usize) -> bool) -> usize {
    let mut i = rand::below(source.next_u64(), n);
    for _ in 1..DRAWS {
        if usable(i) {
            return i;
        }
        i = rand::below(source.next_u64(), n);
    }
    next_usable(n, i, None, &usable).unwrap_or(i)
}

/// Two distinct random positions for a power-of-two-choices pick, and a coin for a
/// tie between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Two {
    pub(crate) first: usize,
    /// `None` when there is one position, or one usable.
    pub(crate) second: Option<usize>,
    pub(crate) coin: bool,
}

impl Two {
    /// Of the two, the one of lower `cost`; a tie goes to the coin.
    #[inline]
    pub(crate) fn choose<C: PartialOrd>(self, cost: impl Fn(usize) -> C) -> usize {
        let Some(second) = self.second else {
            return self.first;
        };
        let (a, b) = (cost(self.first), cost(second));
        if a < b {
            self.first
        } else if b < a || self.coin {
            second
        } else {
            self.first
        }
    }
}

/// Two distinct uniformly random positions of `0..n` for which `usable` is true (the
/// first as [`one`] draws it, the second the same way among the others). `n` must not
/// be zero.
#[inline]
pub(crate) fn two(source: &Source, n: usize, usable: impl Fn(usize) -> bool) -> Two {
    let r = source.next_u64();
    let coin = r & 1 == 1;
    let first = rand::below(r, n);
    if n == 1 {
        return Two {
            first,
            second: None,
            coin,
        };
    }
    // One draw gives both: the second from a remix of the same 64 bits.
    let other = |r: u64, first: usize| {
        let j = rand::below(rand::mix(r), n - 1);
        j + usize::from(j >= first)
    };
    let second = other(r, first);
    if usable(first) && usable(second) {
        return Two {
            first,
            second: Some(second),
            coin,
        };
    }
    let first = if usable(first) {
        first
    } else {
        one(source, n, &usable)
    };
    let mut second = other(source.next_u64(), first);
    for _ in 1..DRAWS {
        if usable(second) {
            break;
        }
        second = other(source.next_u64(), first);
    }
    let second = if usable(second) {
        Some(second)
    } else {
        next_usable(n, second, Some(first), &usable)
    };
    Two {
        first,
        second,
        coin,
    }
}

/// The first usable position after `from` (wrapping round, `from` last), not `skip`.
fn next_usable(
    n: usize,
    from: usize,
    skip: Option<usize>,
    usable: &impl Fn(usize) -> bool,
) -> Option<usize> {
    (1..=n)
        .map(|k| (from + k) % n)
        .find(|&i| Some(i) != skip && usable(i))
}

/// What a two-choice pick of `endpoints` works on: their per-instance table, or,
/// when they carry none (the deriver failed), the position of an unobserved random
/// pick. [`Error::NoEndpoints`] for an empty set.
#[inline]
pub(crate) fn table_or_random<'a, E, S: Send + Sync + 'static>(
    endpoints: &'a Endpoints<E>,
    table: &Derived<Table<S>>,
    source: &Source,
) -> Result<std::result::Result<&'a Table<S>, usize>> {
    if endpoints.is_empty() {
        return Err(Error::NoEndpoints);
    }
    Ok(match endpoints.derived(table) {
        Some(table) => Ok(table),
        None => Err(rand::below(source.next_u64(), endpoints.len())),
    })
}

/// The [`Balancer`](crate::lb::Balancer) impl of a two-choice balancer over an
/// endpointer: a `choose(endpoints, usable)` method does the picking, `usable` asked
/// with the snapshot it was given (no second handle on it is taken).
macro_rules! two_choice_balancer {
    ($balancer:ident) => {
        impl<E: 'static, P: $crate::Endpointer<E>> $crate::lb::Balancer<E> for $balancer<P> {
            #[inline]
            fn pick(&self) -> $crate::Result<$crate::lb::Pick<E>> {
                self.choose(self.endpointer.endpoints()?, |_, _| true)
            }

            fn pick_if(
                &self,
                usable: &$crate::lb::Usable<'_, E>,
            ) -> $crate::Result<$crate::lb::Pick<E>> {
                self.choose(self.endpointer.endpoints()?, usable)
            }

            fn attach(
                &self,
                derive: std::sync::Arc<dyn $crate::DeriveAny<E>>,
            ) -> $crate::Result<usize> {
                self.endpointer.attach(derive)
            }
        }
    };
}
pub(crate) use two_choice_balancer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_are_distinct_and_cover_every_pair() {
        let source = Source::seeded(3);
        let mut seen = [[0u32; 4]; 4];
        for _ in 0..4_000 {
            let t = two(&source, 4, |_| true);
            let b = t.second.unwrap();
            assert_ne!(t.first, b);
            seen[t.first][b] += 1;
        }
        for (a, row) in seen.iter().enumerate() {
            for (b, &count) in row.iter().enumerate() {
                assert_eq!(count == 0, a == b, "{a},{b}: {count}");
            }
        }
    }

    #[test]
    fn unusable_positions_are_never_chosen_while_any_is_usable() {
        let source = Source::seeded(5);
        for _ in 0..2_000 {
            let usable = |i: usize| i == 7 || i == 2;
            let t = two(&source, 10, usable);
            assert!(usable(t.first));
            assert!(usable(t.second.unwrap()));
            assert_ne!(Some(t.first), t.second);
            assert_eq!(one(&source, 10, |i| i == 9), 9);
        }
        let t = two(&source, 10, |i| i == 4);
        assert_eq!((t.first, t.second), (4, None));
        let t = two(&source, 1, |_| true);
        assert_eq!((t.first, t.second), (0, None));
    }

    #[test]
    fn ties_go_to_the_coin_and_the_cheaper_wins() {
        let t = |coin| Two {
            first: 1,
            second: Some(2),
            coin,
        };
        assert_eq!(t(false).choose(|i| [0, 5, 3][i]), 2);
        assert_eq!(t(true).choose(|i| [0, 3, 5][i]), 1);
        assert_eq!(t(false).choose(|_| 1), 1);
        assert_eq!(t(true).choose(|_| 1), 2);
    }
}
