//! Real peers inside a QEMU guest: Linux open-iscsi (kernel initiator) and
//! LIO (kernel target), built from Debian packages and booted under TCG.
