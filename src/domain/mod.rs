//! The rules the engine decides by: pure functions, no IO.
//!
//! Each module holds one rule of `design/domain.md` and its table tests:
//! [`country`] and [`phone`] (who a subscriber is and where), [`shortcode`] (A5),
//! [`routing`] (A1–A3), [`keywords`] (A7), [`segments`] (A8), [`spend`] (A9) and
//! [`quiet_hours`] (A10). Nothing here imports from the rest of the crate.

pub mod country;
pub mod keywords;
pub mod phone;
pub mod quiet_hours;
pub mod routing;
pub mod segments;
pub mod shortcode;
pub mod spend;

pub use country::{Country, CountryError};
pub use keywords::{KeywordClass, KeywordLists, first_word, normalize, opt_out_intent};
pub use phone::{Msisdn, PhoneError};
pub use quiet_hours::{QuietWindow, next_allowed, zone_for};
pub use routing::{
    AttributionMove, RouteDecision, UnattributedReason, on_dispatch, route_inbound,
    route_inbound_body, route_inbound_normalized,
};
pub use segments::{BodyError, Encoding, MAX_SEGMENTS, SegmentCount, check_body};
pub use shortcode::{CountryMismatch, ShortCode, ShortCodeError};
pub use spend::{cost_micros, month_key, notices_crossed, usd_to_micros, would_exceed};
