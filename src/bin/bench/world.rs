//! The benchmark's world: tenants, codes, keywords and subscribers, the engine configuration
//! that declares them, and the traffic that flows through them.
//!
//! Message `n` of a run is fully determined by `n`: its tenant, code, subscriber and route
//! (keyword on the shared code, the tenant's dedicated code, or the shared "ops" code where no
//! keyword exists, so it lands in the unattributed queue). So the load generator knows which
//! stream each message must reach without asking the engine, and a client can tell from the
//! body alone which message it got and when it was scheduled (`bench n=… t=…`).

use std::fmt::Write as _;

/// The `sim` carrier's inbound bearer secret in every generated configuration.
pub const SECRET: &str = "bench-inbound-secret";
/// The shared code every tenant has a keyword on.
pub const SHARED_CODE: &str = "50000";
/// A shared code without keywords: its traffic is unattributed (the `ops` stream).
pub const OPS_CODE: &str = "50001";
/// Dedicated codes are `DEDICATED_BASE + tenant index`.
const DEDICATED_BASE: u32 = 51000;
/// Subscribers that write to tenants: `+1 415 200 0000 + i` (valid US numbering).
const TENANT_SUBSCRIBERS: u64 = 14_152_000_000;
/// Subscribers that write to the ops code: `+1 415 300 0000 + i`.
const OPS_SUBSCRIBERS: u64 = 14_153_000_000;
const OPS_POOL: u64 = 1000;

/// Where message `n` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The tenant's keyword on the shared code.
    Keyword(usize),
    /// The tenant's dedicated code.
    Dedicated(usize),
    /// The shared code without keywords: unattributed, for ops.
    Ops,
}

#[derive(Debug, Clone)]
pub struct World {
    pub tenants: usize,
    /// Subscribers writing to tenants (each sticks to one tenant, so attribution never shifts).
    pub subscribers: usize,
    /// Share of messages (per mille) on the ops code.
    pub ops_permille: u64,
    /// Share of messages (per mille) on dedicated codes; the rest use keywords.
    pub dedicated_permille: u64,
    /// `engine.connection_queue`.
    pub connection_queue: usize,
    /// `engine.batch_max`.
    pub batch_max: usize,
}

impl Default for World {
    fn default() -> World {
        World {
            tenants: 8,
            subscribers: 5_000,
            ops_permille: 50,
            dedicated_permille: 150,
            connection_queue: 4096,
            batch_max: 1024,
        }
    }
}

/// A fixed bijective mix of `n` (splitmix64), so routes look random but are reproducible.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn tenant_id(i: usize) -> String {
    format!("t{i:03}")
}

pub fn tenant_stream(i: usize) -> String {
    format!("tenant:{}", tenant_id(i))
}

/// Subscriber `i` of the tenant pool; it writes to tenant `i % tenants` only.
pub fn tenant_subscriber(i: u64) -> String {
    format!("+{}", TENANT_SUBSCRIBERS + i)
}

fn keyword(i: usize) -> String {
    format!("KW{i:03}")
}

fn dedicated_code(i: usize) -> String {
    (DEDICATED_BASE + i as u32).to_string()
}

impl World {
    /// The configuration file for this world.
    pub fn config_toml(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "[engine]\nlisten = \"127.0.0.1:0\"\nheartbeat_ms = 20000\nconnection_queue = {}\nbatch_max = {}\n\n",
            self.connection_queue, self.batch_max
        );
        for i in 0..self.tenants {
            let _ = write!(
                s,
                "[[tenants]]\nid = \"{id}\"\nname = \"Bench Tenant {i:03}\"\n\
                 help_text = \"Bench Tenant {i:03}: help at +1 800 555 0100.\"\n\
                 stop_text = \"You are unsubscribed from Bench Tenant {i:03}.\"\n\
                 keywords = [{{ code = \"{SHARED_CODE}\", word = \"{kw}\" }}]\n\n",
                id = tenant_id(i),
                kw = keyword(i),
            );
        }
        for code in [SHARED_CODE, OPS_CODE] {
            let _ = write!(
                s,
                "[[codes]]\ncode = \"{code}\"\ncountry = \"US\"\nkind = \"shared\"\ncarrier = \"sim\"\n\n"
            );
        }
        for i in 0..self.tenants {
            let _ = write!(
                s,
                "[[codes]]\ncode = \"{}\"\ncountry = \"US\"\nkind = \"dedicated\"\ntenant = \"{}\"\ncarrier = \"sim\"\n\n",
                dedicated_code(i),
                tenant_id(i)
            );
        }
        let _ = write!(
            s,
            "[[carriers]]\nid = \"sim\"\nkind = \"sim\"\ninbound_secret = \"{SECRET}\"\n\n[pricing]\nUS = 0.0079\n"
        );
        s
    }

    pub fn route(&self, n: u64) -> Route {
        let tenant = (n % self.tenants as u64) as usize;
        let pick = mix(n) % 1000;
        if pick < self.ops_permille {
            Route::Ops
        } else if pick < self.ops_permille + self.dedicated_permille {
            Route::Dedicated(tenant)
        } else {
            Route::Keyword(tenant)
        }
    }

    /// The stream message `n` lands in.
    pub fn stream_index(&self, n: u64) -> usize {
        match self.route(n) {
            Route::Keyword(t) | Route::Dedicated(t) => t,
            Route::Ops => self.tenants,
        }
    }

    /// Stream names by index: the tenants' in order, then `ops`.
    pub fn stream_name(&self, index: usize) -> String {
        if index < self.tenants {
            tenant_stream(index)
        } else {
            "ops".to_string()
        }
    }

    /// The subscriber of message `n` (each subscriber writes to one tenant only).
    pub fn subscriber(&self, n: u64) -> String {
        let tenants = self.tenants as u64;
        match self.route(n) {
            Route::Ops => format!("+{}", OPS_SUBSCRIBERS + mix(n ^ 0x55) % OPS_POOL),
            Route::Keyword(t) | Route::Dedicated(t) => {
                let per_tenant = (self.subscribers as u64 / tenants).max(1);
                let slot = mix(n ^ 0xaa) % per_tenant;
                tenant_subscriber(t as u64 + tenants * slot)
            }
        }
    }

    /// The JSON body of `POST /v1/carriers/sim/inbound` for message `n` of run `run`,
    /// scheduled `t_ns` after the run's epoch.
    pub fn inbound_json(&self, run: &str, n: u64, t_ns: u64) -> String {
        let (to, first) = match self.route(n) {
            Route::Keyword(t) => (SHARED_CODE.to_string(), keyword(t)),
            Route::Dedicated(t) => (dedicated_code(t), "Hi".to_string()),
            Route::Ops => (OPS_CODE.to_string(), "Hello".to_string()),
        };
        format!(
            "{{\"id\":\"{run}-{n}\",\"from\":\"{from}\",\"to\":\"{to}\",\"body\":\"{first} bench n={n} t={t_ns} see you at the corner shop around noon, thanks\"}}",
            from = self.subscriber(n),
        )
    }

    /// The first and last subscriber numbers, to check against the phone rules at start.
    pub fn sample_numbers(&self) -> Vec<String> {
        let last = self.subscribers.max(1) as u64 - 1;
        vec![
            format!("+{TENANT_SUBSCRIBERS}"),
            format!("+{}", TENANT_SUBSCRIBERS + last),
            format!("+{OPS_SUBSCRIBERS}"),
            format!("+{}", OPS_SUBSCRIBERS + OPS_POOL - 1),
        ]
    }
}

/// `(n, t_ns)` from a frame carrying a bench message body, found by text search (no JSON
/// parse: the load generator must stay cheaper than what it measures).
pub fn parse_marker(frame: &str) -> Option<(u64, u64)> {
    let at = frame.find("bench n=")? + "bench n=".len();
    let rest = &frame[at..];
    let (n, rest) = leading_number(rest)?;
    let rest = rest.strip_prefix(" t=")?;
    let (t, _) = leading_number(rest)?;
    Some((n, t))
}

fn leading_number(s: &str) -> Option<(u64, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    Some((s[..end].parse().ok()?, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_round_trips_through_a_body() {
        let w = World::default();
        let json = w.inbound_json("r", 1234, 987_654_321);
        assert_eq!(parse_marker(&json), Some((1234, 987_654_321)));
    }

    #[test]
    fn the_configuration_parses() {
        let w = World::default();
        shortbox::config::Config::parse(&w.config_toml(), "bench.toml").expect("valid");
    }
}
