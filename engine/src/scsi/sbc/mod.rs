//! SBC-4 commands: the data path of a direct-access block device.

use super::LuConfig;
use super::command::{Command, Outcome};
use super::device::LogicalUnit;

/// SBC state of one logical unit.
#[derive(Debug, Default)]
pub struct State {}

impl State {
    pub fn new(config: &LuConfig) -> State {
        let _ = config;
        State {}
    }
}

macro_rules! todo_handlers {
    ($($name:ident),*) => {$(
        pub fn $name(lu: &mut LogicalUnit, cmd: &Command<'_>) -> Outcome {
            let _ = (lu, cmd);
            todo!(stringify!($name))
        }
    )*};
}

todo_handlers!(
    read_capacity10,
    read_capacity16,
    get_lba_status,
    read,
    write,
    write_and_verify,
    verify,
    write_same,
    unmap,
    compare_and_write,
    orwrite,
    write_atomic16,
    pre_fetch,
    synchronize_cache,
    sanitize,
    read_defect_data
);
