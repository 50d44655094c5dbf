//! Pure tests of `App::update`: no IO, no async; the harness answers calls by hand.
