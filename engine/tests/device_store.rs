//! The block-device store over a real block device: a loop device made for
//! the test (needs root and /dev/loop-control; skipped, saying why, when
//! they are missing, unless ISCSI_HARNESS_REQUIRE_PEERS=1 as in CI).

use std::path::{Path, PathBuf};
use std::process::Command;

use iscsi_engine::store::{BlockStore, DeviceStore, StoreError};

/// A loop device over a scratch file, detached on drop.
struct LoopDevice {
    device: PathBuf,
    file: PathBuf,
}

impl LoopDevice {
    fn attach(size: u64) -> Result<LoopDevice, String> {
        let file =
            std::env::temp_dir().join(format!("iscsi-harness-loop-{}.img", std::process::id()));
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size))
            .map_err(|e| e.to_string())?;
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&file)
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let device = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
                Ok(LoopDevice { device, file })
            }
            Ok(o) => {
                let _ = std::fs::remove_file(&file);
                Err(format!(
                    "losetup failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&file);
                Err(format!("losetup not runnable: {e}"))
            }
        }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn skip_or_fail(why: &str) {
    if std::env::var("ISCSI_HARNESS_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("ISCSI_HARNESS_REQUIRE_PEERS=1 but no loop device: {why}");
    }
    eprintln!(
        "SKIPPED: no loop device ({why}); set ISCSI_HARNESS_REQUIRE_PEERS=1 to make this a failure"
    );
}

#[test]
fn device_store_reads_writes_flushes_and_discards_a_block_device() {
    const SIZE: u64 = 32 << 20;
    let lo = match LoopDevice::attach(SIZE) {
        Ok(lo) => lo,
        Err(why) => return skip_or_fail(&why),
    };
    let mut store = DeviceStore::open(&lo.device, false).expect("open the loop device");
    assert_eq!(store.len(), SIZE, "capacity comes from the device");
    assert!(!store.is_thin());
    assert_eq!(store.describe(), format!("dev:{}", lo.device.display()));
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 253) as u8).collect();
    store.write_at(1 << 20, &data).unwrap();
    store.flush().unwrap();
    let mut back = vec![0u8; data.len()];
    store.read_at(1 << 20, &mut back).unwrap();
    assert_eq!(back, data);
    store.discard(1 << 20, 4096).unwrap();
    store.read_at(1 << 20, &mut back[..4096]).unwrap();
    assert!(
        back[..4096].iter().all(|&b| b == 0),
        "a discarded range reads as zeros"
    );
    assert_eq!(
        store.allocation(0).unwrap(),
        (true, SIZE),
        "a block device is thick"
    );
    assert!(matches!(
        store.read_at(SIZE, &mut back[..512]),
        Err(StoreError::OutOfRange { .. })
    ));
    drop(store);
    let file_bytes = std::fs::read(&lo.file).unwrap();
    assert_eq!(
        &file_bytes[(1 << 20) + 4096..(1 << 20) + 65536],
        &data[4096..],
        "the bytes reached the device"
    );
    let readonly = DeviceStore::open(&lo.device, true).expect("read-only open");
    assert_eq!(readonly.len(), SIZE);
}

#[test]
fn a_regular_file_is_not_a_block_device() {
    let path =
        std::env::temp_dir().join(format!("iscsi-harness-not-a-device-{}", std::process::id()));
    std::fs::write(&path, [0u8; 4096]).unwrap();
    let err = DeviceStore::open(Path::new(&path), true)
        .err()
        .expect("must be refused");
    let _ = std::fs::remove_file(&path);
    assert!(err.to_string().contains("not a block device"), "{err}");
}
