//! Key rotation's Redis side (`keys.rs`, "Rotation"): the scripts that take claims and locks
//! under every name of the ring, and the moves of a value from an older key's name to the
//! primary's. A sealed value's associated data is its name, so a move re-seals it here
//! and a script swaps it in only if the old value is still the one read.

use std::collections::BTreeMap;

use redis::{RedisError, Script};

use crate::connection::RedisConnection;
use crate::seal::Sealer;

/// KEYS: one claim (or lock) under every name of the ring; ARGV: owner, TTL ms. Taken (or
/// renewed) under all of them if none is held by another owner.
pub(crate) const CLAIM: &str = r"
for i = 1, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 1
";

/// KEYS: claims (or one value); ARGV[1] owner (or the value read). Each deleted only if it
/// still holds ARGV[1]; returns how many were. (Also the token store's compare-and-delete.)
pub(crate) const RELEASE: &str = r"
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then n = n + redis.call('DEL', KEYS[i]) end
end
return n
";

/// KEYS[1] the hash under an older name, KEYS[2] under the primary's; ARGV: triples of
/// field, value read, value to write ('' = drop it). Moved only if the old hash is still
/// what was read; a field already under the new name is newer and kept. The TTL goes too.
const MOVE_HASH: &str = r"
if redis.call('HLEN', KEYS[1]) ~= #ARGV / 3 then return 0 end
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
local ttl = redis.call('PTTL', KEYS[1])
for i = 1, #ARGV, 3 do
  if ARGV[i + 2] ~= '' then redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 2]) end
end
redis.call('DEL', KEYS[1])
if ttl > 0 and redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
";

/// KEYS[1] a value under an older name, KEYS[2] the primary's; ARGV: the value read, the
/// value to write. Moved (TTL kept) only if unchanged, never over a newer value.
const MOVE_STRING: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  if ttl > 0 then
    redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
  else
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
redis.call('DEL', KEYS[1])
return 1
";

/// The associated data of a hash field's sealed value.
pub(crate) fn field_aad(key: &str, field: &str) -> String {
    format!("{key}/{field}")
}

/// Moves the session hash `from` to `to`, each sealed field re-sealed for its new name
/// (generations, `*:gen`, are plain). A field that does not open is dropped (it reads as
/// absent anyway). False if the hash changed meanwhile or is gone.
pub(crate) async fn move_hash(
    connection: &RedisConnection,
    sealer: &Sealer,
    from: &str,
    to: &str,
) -> Result<bool, RedisError> {
    let mut manager = connection.manager();
    let fields: BTreeMap<String, Vec<u8>> = redis::cmd("HGETALL")
        .arg(from)
        .query_async(&mut manager)
        .await?;
    if fields.is_empty() {
        return Ok(false);
    }
    let script = Script::new(MOVE_HASH);
    let mut invocation = script.prepare_invoke();
    invocation.key(from).key(to);
    for (field, raw) in fields {
        let moved = if field.ends_with(":gen") {
            raw.clone()
        } else {
            match sealer.open(&field_aad(from, &field), raw.clone()) {
                Ok(plain) => sealer.seal(&field_aad(to, &field), plain),
                Err(_) => Vec::new(),
            }
        };
        invocation.arg(field).arg(raw).arg(moved);
    }
    let moved: i64 = invocation.invoke_async(&mut manager).await?;
    Ok(moved == 1)
}

/// Moves the string value `raw` read at `from` to `to`, re-sealed for its new name (the
/// name is the associated data). False if it changed meanwhile or does not open.
pub(crate) async fn move_string(
    connection: &RedisConnection,
    sealer: &Sealer,
    from: &str,
    to: &str,
    raw: Vec<u8>,
) -> Result<bool, RedisError> {
    let Ok(plain) = sealer.open(from, raw.clone()) else {
        return Ok(false);
    };
    let sealed = sealer.seal(to, plain);
    let mut manager = connection.manager();
    let moved: i64 = Script::new(MOVE_STRING)
        .key(from)
        .key(to)
        .arg(raw)
        .arg(sealed)
        .invoke_async(&mut manager)
        .await?;
    Ok(moved == 1)
}

/// Every key name matching `pattern` (`SCAN`, 500 at a time).
pub(crate) async fn scan(
    connection: &RedisConnection,
    pattern: &str,
) -> Result<Vec<String>, RedisError> {
    let mut manager = connection.manager();
    let mut found = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut manager)
            .await?;
        found.extend(batch);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}
