use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hash, Hasher},
    net::SocketAddr,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

// WEIR PATCH (P10): the cookie was SipHash with the fixed all-zero key over the address and
// `seconds * 60` (so anyone could compute it, and it changed every second). It is now keyed
// by a secret drawn once per process and changes every minute, so the listener can check a
// conclusion's cookie without having kept any state for the induction (`cookie_is_valid`),
// the way libsrt does.
fn secret() -> &'static RandomState {
    static SECRET: OnceLock<RandomState> = OnceLock::new();
    SECRET.get_or_init(RandomState::new)
}

fn minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

fn cookie_at(saddr: &SocketAddr, minute: u64) -> i32 {
    let mut hasher = secret().build_hasher();
    saddr.hash(&mut hasher);
    minute.hash(&mut hasher);
    hasher.finish() as u32 as i32
}

pub fn gen_cookie(saddr: &SocketAddr) -> i32 {
    cookie_at(saddr, minute())
}

/// WEIR PATCH (P10): a cookie this process gave `saddr` this minute or the one before.
pub fn cookie_is_valid(saddr: &SocketAddr, cookie: i32) -> bool {
    let now = minute();
    cookie == cookie_at(saddr, now) || cookie == cookie_at(saddr, now.saturating_sub(1))
}
