//! Chapter 1: training a small network from scratch ([`train`]), and the run chapter 1 makes,
//! which later chapters reuse ([`scratch`]).
pub mod scratch;
pub mod train;
