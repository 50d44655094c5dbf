//! Helpers of the durability tests (crash, churn): the engine binary as a child process.

pub mod process;
