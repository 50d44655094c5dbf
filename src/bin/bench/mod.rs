//! The parts of the load generator: the world it simulates, the engine process it drives, the
//! HTTP and WebSocket clients, one open-loop run, the in-process benchmarks, and reporting.

pub mod child;
pub mod http;
pub mod load;
pub mod report;
pub mod storage;
pub mod throttle;
pub mod world;
pub mod ws;
