//! Persistent reservations (SPC-5, "Reservations"): PERSISTENT RESERVE IN
//! and PERSISTENT RESERVE OUT, and the access rules the gate applies (the
//! tables of commands allowed in the presence of reservations in SPC-5 and
//! SBC-4).
//!
//! Registrations are per I_T nexus and survive resets and nexus loss; they
//! do not persist through power loss (PTPL_C = 0). Only logical unit scope
//! is supported; SPEC_I_PT and ALL_TG_PT are not (SIP_C = ATP_C = 0).

use std::collections::BTreeMap;

use super::super::Nexus;
use super::super::cdb::{Cdb, invalid_parameter, put_be16, put_be32};
use super::super::command::{Command, Failure, Outcome};
use super::super::device::LogicalUnit;
use super::super::sense::{Asc, Sense};
use super::super::status;
use super::{identity, pad4, parameter_list, truncate};

/// INVALID RELEASE OF PERSISTENT RESERVATION (SPC-5, ASC and ASCQ
/// assignments).
const INVALID_RELEASE: Asc = Asc(0x26, 0x04);

/// Persistent reservation types (SPC-5, TYPE field of PERSISTENT RESERVE
/// OUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PrType {
    WriteExclusive,
    ExclusiveAccess,
    WriteExclusiveRegistrantsOnly,
    ExclusiveAccessRegistrantsOnly,
    WriteExclusiveAllRegistrants,
    ExclusiveAccessAllRegistrants,
}

impl PrType {
    fn from_code(code: u8) -> Option<PrType> {
        Some(match code {
            1 => PrType::WriteExclusive,
            3 => PrType::ExclusiveAccess,
            5 => PrType::WriteExclusiveRegistrantsOnly,
            6 => PrType::ExclusiveAccessRegistrantsOnly,
            7 => PrType::WriteExclusiveAllRegistrants,
            8 => PrType::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            PrType::WriteExclusive => 1,
            PrType::ExclusiveAccess => 3,
            PrType::WriteExclusiveRegistrantsOnly => 5,
            PrType::ExclusiveAccessRegistrantsOnly => 6,
            PrType::WriteExclusiveAllRegistrants => 7,
            PrType::ExclusiveAccessAllRegistrants => 8,
        }
    }

    /// All registrants types: every registered I_T nexus is a holder.
    fn all_registrants(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusiveAllRegistrants | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// Registrants only and all registrants types, for which registrants
    /// have access and releases are announced.
    fn registrants_types(self) -> bool {
        !matches!(self, PrType::WriteExclusive | PrType::ExclusiveAccess)
    }

    fn write_exclusive(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusive
                | PrType::WriteExclusiveRegistrantsOnly
                | PrType::WriteExclusiveAllRegistrants
        )
    }
}

/// How a command touches the logical unit, as the SPC-5 and SBC-4 tables of
/// commands allowed in the presence of reservations classify it: allowed
/// under every reservation, reads the medium, writes it, or anything else
/// (allowed only to holders and, under the registrants types, to
/// registrants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Any,
    Read,
    Write,
    Other,
}

#[derive(Debug, Clone)]
struct Reservation {
    holder: Nexus,
    kind: PrType,
}

/// The persistent reservation state of one logical unit.
#[derive(Debug, Default)]
pub(super) struct Persistent {
    generation: u32,
    registrations: BTreeMap<Nexus, u64>,
    reservation: Option<Reservation>,
}

impl Persistent {
    pub(super) fn has_reservation(&self) -> bool {
        self.reservation.is_some()
    }

    pub(super) fn is_registered(&self, nexus: &Nexus) -> bool {
        self.registrations.contains_key(nexus)
    }

    /// Whether `nexus` holds the persistent reservation (SPC-5, "Persistent
    /// reservation holder").
    pub(super) fn is_holder(&self, nexus: &Nexus) -> bool {
        match &self.reservation {
            None => false,
            Some(r) if r.kind.all_registrants() => self.is_registered(nexus),
            Some(r) => &r.holder == nexus,
        }
    }

    /// Whether a command with this access is allowed to `nexus`.
    pub(super) fn allows(&self, nexus: &Nexus, access: Access) -> bool {
        let Some(r) = &self.reservation else {
            return true;
        };
        if access == Access::Any || self.is_holder(nexus) {
            return true;
        }
        if r.kind.registrants_types() && self.is_registered(nexus) {
            return true;
        }
        access == Access::Read && r.kind.write_exclusive()
    }

    /// Removes a registration; a holder's reservation goes with it unless
    /// other registrants still hold an all registrants one (SPC-5
    /// "Unregistering"). Returns the other registrants to tell of a released
    /// registrants only reservation.
    fn unregister(&mut self, nexus: &Nexus) -> Vec<Nexus> {
        self.registrations.remove(nexus);
        let Some(r) = &self.reservation else {
            return Vec::new();
        };
        if r.kind.all_registrants() {
            if self.registrations.is_empty() {
                self.reservation = None;
            }
            return Vec::new();
        }
        if &r.holder != nexus {
            return Vec::new();
        }
        let kind = r.kind;
        self.reservation = None;
        if kind.registrants_types() {
            self.registrations.keys().cloned().collect()
        } else {
            Vec::new()
        }
    }
}

/// PERSISTENT RESERVE IN (SPC-5): READ KEYS, READ RESERVATION,
/// REPORT CAPABILITIES, READ FULL STATUS.
pub fn persistent_reserve_in(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let allocation_length = cdb.be16(7) as usize;
    let pr = &lu.spc.pr;
    let mut out = vec![0u8; 8];
    put_be32(&mut out, 0, pr.generation);
    match cdb.service_action() {
        0x00 => {
            for key in pr.registrations.values() {
                out.extend_from_slice(&key.to_be_bytes());
            }
        }
        0x01 => {
            if let Some(r) = &pr.reservation {
                let key = if r.kind.all_registrants() {
                    0
                } else {
                    pr.registrations.get(&r.holder).copied().unwrap_or(0)
                };
                out.extend_from_slice(&key.to_be_bytes());
                out.extend_from_slice(&[0; 8]);
                out[8 + 13] = r.kind.code();
            }
        }
        0x02 => return Ok(truncate(report_capabilities(), allocation_length)),
        0x03 => {
            for (nexus, key) in &pr.registrations {
                out.extend(full_status_descriptor(pr, nexus, *key));
            }
        }
        _ => return Err(Cdb::invalid_field(1, Some(4)).into()),
    }
    let additional = (out.len() - 8) as u32;
    put_be32(&mut out, 4, additional);
    Ok(truncate(out, allocation_length))
}

/// REPORT CAPABILITIES parameter data (SPC-5): CRH; TMV with
/// ALLOW COMMANDS 001b (TEST UNIT READY passes WE and EA reservations);
/// every type of logical unit scope.
fn report_capabilities() -> Vec<u8> {
    let mut out = vec![0u8; 8];
    put_be16(&mut out, 0, 8);
    out[2] = 0x10;
    out[3] = 0x80 | 0x10;
    // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX; EX_AC_AR.
    out[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;
    out[5] = 0x01;
    out
}

/// One READ FULL STATUS descriptor (SPC-5) with the registrant's
/// iSCSI TransportID.
fn full_status_descriptor(pr: &Persistent, nexus: &Nexus, key: u64) -> Vec<u8> {
    let mut d = vec![0u8; 24];
    d[..8].copy_from_slice(&key.to_be_bytes());
    if pr.is_holder(nexus) {
        d[12] = 0x01;
        if let Some(r) = &pr.reservation {
            d[13] = r.kind.code();
        }
    }
    put_be16(&mut d, 18, identity::relative_port(nexus));
    let transport_id = transport_id(nexus);
    put_be32(&mut d, 20, transport_id.len() as u32);
    d.extend(transport_id);
    d
}

/// The iSCSI TransportID of an initiator port (SPC-5, "TransportID for
/// initiator ports using SCSI over iSCSI"; format
/// 01b): "name,i,0xISID", null-terminated, padded, at least 24 bytes.
fn transport_id(nexus: &Nexus) -> Vec<u8> {
    let mut id = vec![0x40 | identity::PROTOCOL_ISCSI, 0, 0, 0];
    id.extend(nexus.initiator_port_name().bytes());
    id.push(0);
    pad4(&mut id);
    id.resize(id.len().max(24), 0);
    let additional = (id.len() - 4) as u16;
    put_be16(&mut id, 2, additional);
    id
}

/// The basic PERSISTENT RESERVE OUT parameter list (SPC-5).
struct Parameters {
    key: u64,
    service_action_key: u64,
}

fn reservation_conflict() -> Failure {
    Failure::Status(status::RESERVATION_CONFLICT)
}

/// PERSISTENT RESERVE OUT (SPC-5).
pub fn persistent_reserve_out(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
    let cdb = cmd.cdb;
    let sa = cdb.service_action();
    let scope = cdb.u8(2) >> 4;
    let type_code = cdb.u8(2) & 0x0f;
    let length = cdb.be32(5) as usize;
    if sa == 0x07 {
        return register_and_move(lu, cmd, length, scope, type_code);
    }
    if length != 24 {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let data = parameter_list(cmd, length);
    if data.len() < 24 {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let params = Parameters {
        key: u64::from_be_bytes(data[0..8].try_into().unwrap_or_default()),
        service_action_key: u64::from_be_bytes(data[8..16].try_into().unwrap_or_default()),
    };
    let flags = data[20];
    if flags & 0x08 != 0 {
        // SPEC_I_PT (SIP_C = 0).
        return Err(invalid_parameter(20, Some(3)).into());
    }
    if flags & 0x04 != 0 {
        // ALL_TG_PT (ATP_C = 0).
        return Err(invalid_parameter(20, Some(2)).into());
    }
    if flags & 0x01 != 0 {
        // APTPL (PTPL_C = 0).
        return Err(invalid_parameter(20, Some(0)).into());
    }
    // RESERVE, RELEASE and the PREEMPTs name a type of LU scope.
    let kind = if matches!(sa, 0x01 | 0x02 | 0x04 | 0x05) {
        if scope != 0 {
            return Err(Cdb::invalid_field(2, Some(7)).into());
        }
        match PrType::from_code(type_code) {
            Some(kind) => Some(kind),
            None => return Err(Cdb::invalid_field(2, Some(3)).into()),
        }
    } else {
        None
    };
    let nexus = cmd.nexus;
    let spc = &mut lu.spc;
    let pr = &mut spc.pr;
    let registered = pr.registrations.get(nexus).copied();
    match sa {
        0x00 | 0x06 => {
            let ignore_existing = sa == 0x06;
            match registered {
                None if !ignore_existing && params.key != 0 => return Err(reservation_conflict()),
                None if params.service_action_key == 0 => {}
                None => {
                    pr.registrations
                        .insert(nexus.clone(), params.service_action_key);
                    pr.generation = pr.generation.wrapping_add(1);
                }
                Some(key) if !ignore_existing && key != params.key => {
                    return Err(reservation_conflict());
                }
                Some(_) if params.service_action_key == 0 => {
                    let released = pr.unregister(nexus);
                    pr.generation = pr.generation.wrapping_add(1);
                    for other in &released {
                        spc.ua.establish(other, Asc::RESERVATIONS_RELEASED);
                    }
                }
                Some(_) => {
                    pr.registrations
                        .insert(nexus.clone(), params.service_action_key);
                    pr.generation = pr.generation.wrapping_add(1);
                }
            }
        }
        0x01 => {
            let kind = kind.unwrap_or(PrType::WriteExclusive);
            if registered != Some(params.key) {
                return Err(reservation_conflict());
            }
            match &pr.reservation {
                None => {
                    pr.reservation = Some(Reservation {
                        holder: nexus.clone(),
                        kind,
                    })
                }
                Some(r) if pr.is_holder(nexus) && r.kind == kind => {}
                Some(_) => return Err(reservation_conflict()),
            }
        }
        0x02 => {
            let kind = kind.unwrap_or(PrType::WriteExclusive);
            if registered != Some(params.key) {
                return Err(reservation_conflict());
            }
            let Some(r) = &pr.reservation else {
                return Ok(Default::default());
            };
            if !pr.is_holder(nexus) {
                return Ok(Default::default());
            }
            if r.kind != kind {
                return Err(Sense::illegal_request(INVALID_RELEASE).into());
            }
            pr.reservation = None;
            if kind.registrants_types() {
                let others: Vec<Nexus> = pr
                    .registrations
                    .keys()
                    .filter(|n| *n != nexus)
                    .cloned()
                    .collect();
                for other in &others {
                    spc.ua.establish(other, Asc::RESERVATIONS_RELEASED);
                }
            }
        }
        0x03 => {
            if registered != Some(params.key) {
                return Err(reservation_conflict());
            }
            let others: Vec<Nexus> = pr
                .registrations
                .keys()
                .filter(|n| *n != nexus)
                .cloned()
                .collect();
            pr.registrations.clear();
            pr.reservation = None;
            pr.generation = pr.generation.wrapping_add(1);
            for other in &others {
                spc.ua.establish(other, Asc::RESERVATIONS_PREEMPTED);
            }
        }
        0x04 | 0x05 => {
            let kind = kind.unwrap_or(PrType::WriteExclusive);
            if registered != Some(params.key) {
                return Err(reservation_conflict());
            }
            preempt(lu, nexus, kind, params.service_action_key)?;
        }
        _ => return Err(Cdb::invalid_field(1, Some(4)).into()),
    }
    Ok(Default::default())
}

/// PREEMPT and PREEMPT AND ABORT (SPC-5, "Preempting"). The aborting of the
/// preempted nexuses' tasks is the session layer's business; commands run
/// one at a time here.
fn preempt(
    lu: &mut LogicalUnit,
    nexus: &Nexus,
    kind: PrType,
    service_action_key: u64,
) -> Result<(), Failure> {
    let spc = &mut lu.spc;
    let pr = &mut spc.pr;
    let holder_key = pr.reservation.as_ref().and_then(|r| {
        if r.kind.all_registrants() {
            Some(0)
        } else {
            pr.registrations.get(&r.holder).copied()
        }
    });
    let removed: Vec<Nexus>;
    let mut released = Vec::new();
    match holder_key {
        // An all registrants reservation preempted with key 0: every other
        // registration goes and the preempting nexus holds the new one.
        Some(0) if service_action_key == 0 => {
            removed = pr
                .registrations
                .keys()
                .filter(|n| *n != nexus)
                .cloned()
                .collect();
            for n in &removed {
                pr.registrations.remove(n);
            }
            pr.reservation = Some(Reservation {
                holder: nexus.clone(),
                kind,
            });
        }
        // The reservation holder is preempted: its registrations go and the
        // preempting nexus holds the new reservation.
        Some(key) if key == service_action_key => {
            removed = registrants_with_key(pr, service_action_key, nexus);
            for n in &removed {
                pr.registrations.remove(n);
            }
            let old = pr.reservation.replace(Reservation {
                holder: nexus.clone(),
                kind,
            });
            if old.is_some_and(|o| o.kind != kind) {
                released = pr
                    .registrations
                    .keys()
                    .filter(|n| *n != nexus)
                    .cloned()
                    .collect();
            }
        }
        // Otherwise only registrations are removed (SARK 0 is invalid).
        _ => {
            if service_action_key == 0 {
                return Err(invalid_parameter(8, None).into());
            }
            removed = registrants_with_key(pr, service_action_key, nexus);
            if removed.is_empty() && pr.registrations.get(nexus) != Some(&service_action_key) {
                return Err(reservation_conflict());
            }
            for n in &removed {
                pr.unregister(n);
            }
        }
    }
    pr.generation = pr.generation.wrapping_add(1);
    for n in &removed {
        spc.ua.establish(n, Asc::REGISTRATIONS_PREEMPTED);
    }
    for n in &released {
        spc.ua.establish(n, Asc::RESERVATIONS_RELEASED);
    }
    Ok(())
}

/// The registered nexuses other than `except` whose key is `key`.
fn registrants_with_key(pr: &Persistent, key: u64, except: &Nexus) -> Vec<Nexus> {
    pr.registrations
        .iter()
        .filter(|(n, k)| **k == key && *n != except)
        .map(|(n, _)| n.clone())
        .collect()
}

/// REGISTER AND MOVE (SPC-5, "Registering by moving the reservation"): the
/// reservation holder registers `SARK` for another I_T nexus (named by a
/// TransportID and a relative target port identifier) and moves the
/// reservation to it.
fn register_and_move(
    lu: &mut LogicalUnit,
    cmd: &Command<'_>,
    length: usize,
    scope: u8,
    type_code: u8,
) -> Outcome {
    let data = parameter_list(cmd, length);
    if length < 24 || data.len() < length {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    if scope != 0 {
        return Err(Cdb::invalid_field(2, Some(7)).into());
    }
    let Some(kind) = PrType::from_code(type_code) else {
        return Err(Cdb::invalid_field(2, Some(3)).into());
    };
    let key = u64::from_be_bytes(data[0..8].try_into().unwrap_or_default());
    let service_action_key = u64::from_be_bytes(data[8..16].try_into().unwrap_or_default());
    let unreg = data[17] & 0x02 != 0;
    if data[17] & 0x01 != 0 {
        return Err(invalid_parameter(17, Some(0)).into());
    }
    let relative_port = u16::from_be_bytes([data[18], data[19]]);
    let id_length = u32::from_be_bytes([data[20], data[21], data[22], data[23]]) as usize;
    if 24 + id_length > data.len() {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let nexus = cmd.nexus;
    let pr = &mut lu.spc.pr;
    match pr.registrations.get(nexus) {
        Some(&k) if k == key => {}
        _ => return Err(reservation_conflict()),
    }
    let Some(r) = &pr.reservation else {
        return Err(reservation_conflict());
    };
    if r.kind.all_registrants() || &r.holder != nexus {
        return Err(reservation_conflict());
    }
    if service_action_key == 0 {
        return Err(invalid_parameter(8, None).into());
    }
    let destination = parse_transport_id(&data[24..24 + id_length], nexus, relative_port)?;
    if &destination == nexus {
        return Err(invalid_parameter(24, None).into());
    }
    pr.registrations
        .insert(destination.clone(), service_action_key);
    pr.reservation = Some(Reservation {
        holder: destination,
        kind,
    });
    if unreg {
        pr.registrations.remove(nexus);
    }
    pr.generation = pr.generation.wrapping_add(1);
    Ok(Default::default())
}

/// The I_T nexus an iSCSI TransportID (format 01b, "name,i,0xISID") names
/// through the target port with `relative_port` of this target.
fn parse_transport_id(id: &[u8], via: &Nexus, relative_port: u16) -> Result<Nexus, Failure> {
    if id.len() < 24 || id[0] != (0x40 | identity::PROTOCOL_ISCSI) {
        return Err(invalid_parameter(24, None).into());
    }
    if relative_port == 0 {
        return Err(invalid_parameter(18, None).into());
    }
    let text = &id[4..];
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let text = std::str::from_utf8(&text[..end]).map_err(|_| invalid_parameter(28, None))?;
    let lower = text.to_ascii_lowercase();
    let Some(split) = lower.rfind(",i,0x") else {
        return Err(invalid_parameter(28, None).into());
    };
    let (name, isid_hex) = (&text[..split], &lower[split + 5..]);
    if name.is_empty() || isid_hex.len() != 12 || !isid_hex.is_ascii() {
        return Err(invalid_parameter(28, None).into());
    }
    let mut isid = [0u8; 6];
    for (i, byte) in isid.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&isid_hex[2 * i..2 * i + 2], 16)
            .map_err(|_| invalid_parameter(28, None))?;
    }
    Ok(Nexus {
        initiator_name: name.into(),
        isid: crate::pdu::Isid(isid),
        target_name: via.target_name.clone(),
        target_portal_group_tag: if relative_port == identity::relative_port(via) {
            via.target_portal_group_tag
        } else {
            relative_port
        },
    })
}
