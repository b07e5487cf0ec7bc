//! Small helpers shared by the storage modules: field encryption bound to its place, and
//! conversions between domain values and columns.

use crate::keyring;
use crate::{Store, StoreError};
use printfleet_crypto::field;
use rand::rngs::OsRng;
use serde::de::DeserializeOwned;
use serde::Serialize;

impl Store {
    /// Encrypts `value` (as JSON) under the active key of `scope`, bound to `place`
    /// (`table.column:row-id`). Returns the ciphertext and the key version used.
    pub(crate) async fn seal_json<T: Serialize>(
        &self,
        scope: &str,
        place: &str,
        value: &T,
    ) -> Result<(Vec<u8>, i64), StoreError> {
        let (version, key) = self.keys.active(&self.pool, scope).await?;
        let plain = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let v = u32::try_from(version).map_err(|_| StoreError::Corrupt("key version".into()))?;
        Ok((
            field::seal_field(&key, v, place.as_bytes(), &plain, &mut OsRng),
            version,
        ))
    }

    /// Opens a field and seals it again, at the same place, under the scope's active key (key
    /// rotation). Returns the new ciphertext and its key version.
    pub(crate) async fn reseal(
        &self,
        scope: &str,
        place: &str,
        sealed: &[u8],
    ) -> Result<(Vec<u8>, i64), StoreError> {
        let v: serde_json::Value = self.open_json(scope, place, sealed).await?;
        self.seal_json(scope, place, &v).await
    }

    pub(crate) async fn open_json<T: DeserializeOwned>(
        &self,
        scope: &str,
        place: &str,
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let version = field::field_key_version(sealed)
            .map_err(|e| StoreError::Crypto(format!("{place}: {e}")))?;
        let key = self.keys.get(&self.pool, scope, i64::from(version)).await?;
        let plain = field::open_field(&key, place.as_bytes(), sealed)
            .map_err(|e| StoreError::Crypto(format!("{place}: {e}")))?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("{place}: {e}")))
    }

    /// The blind index of a normalised e-mail address.
    pub(crate) fn email_index(&self, email: &printfleet_domain::Email) -> String {
        self.keys.blind_index().index("email", email.expose())
    }
}

pub(crate) fn tenant_scope(t: printfleet_domain::TenantId) -> String {
    keyring::tenant_scope(t)
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn parse_id<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what}: not an id")))
}

/// Sizes of the `IN (…)` lists of batched look-ups (heartbeat keys, check-in printers). A
/// shorter list is padded to the next size by repeating its last element (harmless in `IN`), so
/// only these few SQL texts exist and their prepared statements stay cached. Every statement is a round trip to the
/// database (on SQLite a hand-over to its connection thread, which waits for a core under
/// load), so lists are long; binding stays cheap because the statements are positional on
/// SQLite ([`positional`]; with named `$N` SQLite's look-up made binding grow
/// with the square of the list).
const IN_SIZES: [usize; 5] = [1, 8, 32, 128, 512];

/// `items` cut into chunks of at most the largest [`IN_SIZES`], each padded to one of the sizes.
pub(crate) fn padded_chunks<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    let max = IN_SIZES[IN_SIZES.len() - 1];
    items
        .chunks(max)
        .map(|chunk| {
            let size = IN_SIZES
                .iter()
                .copied()
                .find(|s| *s >= chunk.len())
                .unwrap_or(max);
            let mut v = chunk.to_vec();
            if let Some(last) = chunk.last() {
                v.resize(size, last.clone());
            }
            v
        })
        .collect()
}

/// `$1, $2, …, $n`: the placeholders of an `IN (…)` list.
pub(crate) fn in_list(n: usize) -> String {
    in_list_from(1, n)
}

/// `$first, …, $(first+n-1)`: an `IN (…)` list after `first - 1` other parameters.
pub(crate) fn in_list_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $cols), ($cols+1, …), …`: the `VALUES` of a multi-row statement. Callers keep
/// `rows` small: SQLite (through sqlx) finds each `$n` by a linear scan of the names, so the
/// binding cost grows with the square of the parameter count.
pub(crate) fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement as the backend binds it fastest. SQLite (through sqlx) binds each `$n` by
/// asking SQLite for the parameter's name, which scans the statement's names: quadratic in the
/// parameter count, a large share of a multi-row insert. `?` parameters are bound by position
/// with no look-up, so on SQLite a statement whose `$n` appear exactly in the order 1, 2, 3, …
/// is rewritten to `?`. Anything else is returned unchanged.
pub(crate) fn positional(backend: crate::Backend, sql: String) -> String {
    if backend != crate::Backend::Sqlite {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut next = 1usize;
    let mut rest = sql.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.parse::<usize>().ok() != Some(next) {
            return sql;
        }
        out.push('?');
        next += 1;
        rest = &rest[at + 1 + digits.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn sqlite_statements_in_order_become_positional() {
        use crate::Backend::{Postgres, Sqlite};
        let sql = format!("INSERT INTO t VALUES {}", super::value_rows(2, 2));
        assert_eq!(
            super::positional(Sqlite, sql.clone()),
            "INSERT INTO t VALUES (?, ?), (?, ?)"
        );
        assert_eq!(super::positional(Postgres, sql.clone()), sql);
        let out_of_order = "SELECT 1 WHERE a = $2 AND b = $1".to_string();
        assert_eq!(
            super::positional(Sqlite, out_of_order.clone()),
            out_of_order
        );
        let repeated = "SELECT 1 WHERE a = $1 OR b = $1".to_string();
        assert_eq!(super::positional(Sqlite, repeated.clone()), repeated);
    }

    #[test]
    fn placeholders_number_every_parameter_once() {
        assert_eq!(super::in_list(3), "$1, $2, $3");
        assert_eq!(super::in_list_from(2, 2), "$2, $3");
        assert_eq!(super::value_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}

#[cfg(test)]
mod padded_tests {
    use super::*;

    #[test]
    fn chunks_are_padded_to_few_sizes() {
        let sizes = |n: usize| {
            let v: Vec<usize> = (0..n).collect();
            padded_chunks(&v)
                .iter()
                .map(|c| c.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(2), [8]);
        assert_eq!(sizes(33), [128]);
        assert_eq!(sizes(200), [512]);
        assert_eq!(sizes(600), [512, 128]);
        let v: Vec<usize> = (0..3).collect();
        assert_eq!(padded_chunks(&v), [vec![0, 1, 2, 2, 2, 2, 2, 2]]);
    }
}
