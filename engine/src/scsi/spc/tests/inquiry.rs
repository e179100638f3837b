//! INQUIRY: standard data and VPD pages.

use super::*;

#[test]
fn standard_inquiry_data() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(false, 0, 260));
    assert_good(&r);
    let d = &r.data_in;
    assert!(d.len() >= 36);
    assert_eq!(d[0], 0x00, "qualifier 0, direct access");
    assert_eq!(d[1], 0x80, "RMB");
    assert!((4..=6).contains(&d[2]), "libiscsi accepts versions 4-6");
    assert_eq!(d[3] & 0x0f, 2, "response data format");
    assert_eq!(d[3] & 0xc0, 0, "AERC and TRMTSK clear");
    assert_eq!(d[4] as usize, d.len() - 5, "additional length");
    assert_eq!(&d[8..16], b"HARNESS ");
    assert_eq!(&d[16..32], b"MEMDISK         ");
    assert_eq!(&d[32..36], b"0.1 ");
    let descriptors: Vec<u16> = (0..8).map(|i| be16(d, 58 + 2 * i)).collect();
    assert!(descriptors.contains(&0x04c0), "claims SBC-3");
    assert!(descriptors.contains(&0x0960), "claims iSCSI");
    assert_ne!(d[5] & 0x08, 0, "3PC");
}

#[test]
fn inquiry_allocation_lengths() {
    let mut dev = device();
    let full = exec(&mut dev, &i1(), &inquiry(false, 0, 255)).data_in;
    for alloc in 0..300u16 {
        let r = exec(&mut dev, &i1(), &inquiry(false, 0, alloc));
        assert_good(&r);
        assert_eq!(r.data_in.len(), (alloc as usize).min(full.len()));
        assert_eq!(&r.data_in[..], &full[..r.data_in.len()]);
    }
    let a = exec(&mut dev, &i1(), &inquiry(false, 0, 511)).data_in;
    let b = exec(&mut dev, &i1(), &inquiry(false, 0, 512)).data_in;
    assert_eq!(a, b);
}

#[test]
fn inquiry_page_code_without_evpd_is_invalid() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(false, 1, 256));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let s = r.sense.unwrap();
    assert_eq!(s[15], 0x80 | 0x40, "field pointer in the CDB");
    assert_eq!(be16(&s, 16), 2);
    let r = exec(&mut dev, &i1(), &[0x12, 0x02, 0, 0, 255, 0]);
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
    let r = exec(&mut dev, &i1(), &inquiry(true, 0x99, 255));
    assert_check(&r, key::ILLEGAL_REQUEST, Asc::INVALID_FIELD_IN_CDB);
}

#[test]
fn supported_vpd_pages_are_sorted_and_readable() {
    let mut dev = device();
    let r = exec(&mut dev, &i1(), &inquiry(true, 0, 255));
    assert_good(&r);
    let d = r.data_in;
    assert_eq!(d[1], 0x00);
    let pages = &d[4..4 + be16(&d, 2) as usize];
    assert_eq!(pages, &[0x00, 0x80, 0x83, 0x86, 0xb0, 0xb1, 0xb2]);
    for &page in pages {
        let r = exec(&mut dev, &i1(), &inquiry(true, page, 255));
        assert_good(&r);
        assert_eq!(r.data_in[1], page);
        assert_eq!(r.data_in.len(), be16(&r.data_in, 2) as usize + 4);
    }
}

#[test]
fn unit_serial_number_page() {
    let mut dev = device();
    let d = exec(&mut dev, &i1(), &inquiry(true, 0x80, 255)).data_in;
    assert_eq!(&d[..4], &[0, 0x80, 0, 7]);
    assert_eq!(&d[4..], b"SN-0001");
}

#[test]
fn device_identification_page() {
    let mut dev = device_with(&[(0, config("SN-0001")), (1, config("SN-0002"))]);
    let a = exec(&mut dev, &i1(), &inquiry(true, 0x83, 255)).data_in;
    let again = exec(&mut dev, &i2(), &inquiry(true, 0x83, 255)).data_in;
    let b = run(&mut dev, &i1(), 1, &inquiry(true, 0x83, 255), &[]).data_in;
    assert_eq!(be16(&a, 2) as usize + 4, a.len());
    let da = designators(&a);
    let naa = &da.iter().find(|d| d.1 == 0 && d.2 == 3).unwrap().3;
    assert_eq!(naa.len(), 16);
    assert_eq!(naa[0] >> 4, 6, "NAA IEEE Registered Extended");
    assert_eq!(da, designators(&again), "stable, and the same target port");
    let naa_b = &designators(&b).into_iter().find(|d| d.2 == 3).unwrap().3;
    assert_ne!(naa, naa_b, "unique per serial");
    let t10 = &da.iter().find(|d| d.1 == 0 && d.2 == 1).unwrap().3;
    assert_eq!(&t10[..8], b"HARNESS ");
    let rel = &da.iter().find(|d| d.1 == 1 && d.2 == 4).unwrap().3;
    assert_eq!(rel, &[0, 0, 0, 1]);
    let port = &da.iter().find(|d| d.1 == 1 && d.2 == 8).unwrap();
    assert_eq!(port.0, 3, "UTF-8");
    assert_eq!(port.3.len() % 4, 0);
    let name = format!("{TARGET},t,0x0001");
    assert_eq!(&port.3[..name.len()], name.as_bytes());
    assert_eq!(port.3[name.len()], 0);
    let device_name = &da.iter().find(|d| d.1 == 2 && d.2 == 8).unwrap().3;
    assert_eq!(&device_name[..TARGET.len()], TARGET.as_bytes());
}

#[test]
fn block_vpd_pages() {
    let mut dev = device();
    let b0 = exec(&mut dev, &i1(), &inquiry(true, 0xb0, 255)).data_in;
    assert_eq!(b0.len(), 64);
    assert_eq!(b0[3], 0x3c);
    assert_ne!(be32(&b0, 20), 0, "MAXIMUM UNMAP LBA COUNT on a thin LU");
    let max_unmap = be32(&b0, 20);
    assert!(max_unmap == u32::MAX || max_unmap <= 1024 * 1024);
    assert_ne!(be32(&b0, 24), 0, "MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT");
    assert!(be32(&b0, 44) <= be32(&b0, 8), "atomic <= max transfer");
    let b1 = exec(&mut dev, &i1(), &inquiry(true, 0xb1, 255)).data_in;
    assert_eq!(be16(&b1, 4), 1, "non-rotating");
    let b2 = exec(&mut dev, &i1(), &inquiry(true, 0xb2, 255)).data_in;
    assert_eq!(b2[5] & 0xe0, 0xe0, "LBPU LBPWS LBPWS10");
    assert_eq!((b2[5] >> 2) & 7, 1, "LBPRZ");
    assert_eq!(b2[6] & 7, 2, "thin provisioned");
}
