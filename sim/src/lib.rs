//! iscsi-sim: the target and initiator engines over turmoil's simulated
//! network and an in-memory disk with faults.
