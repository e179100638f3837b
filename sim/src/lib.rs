//! iscsi-sim: the target and initiator engines over turmoil's simulated
//! network and an in-memory disk with faults, deterministically.
//!
//! One seed names a run: the turmoil world's RNG, the target's and the
//! initiators' RNGs, the workload, the disk's crash outcomes and the fault
//! plan all derive from it ([`rng`]). The engines are the production code;
//! the simulation only supplies a [`net::SimNetwork`], a [`disk::SimDisk`]
//! and a clock.

pub mod backend;
pub mod checker;
pub mod cli;
pub mod disk;
pub mod faults;
pub mod hash;
pub mod net;
pub mod oracle;
pub mod panics;
pub mod payload;
pub mod pcap;
pub mod rng;
pub mod scenarios;
pub mod scripted;
pub mod swarm;
pub mod token;
pub mod trace;
pub mod wire;
pub mod workload;
pub mod world;
