//! Panics inside a simulated run are findings, not crashes of the tool:
//! a panic in a spawned engine task is caught by tokio and would pass
//! unnoticed, and one in the world would take the whole swarm down. A
//! process-wide hook (installed once) records the message of a panic on a
//! thread that is running a simulation, silently; the world checks for it
//! after every step.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string payload)".to_string());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                CAUGHT.with(|c| {
                    c.borrow_mut().get_or_insert(format!("{message}{at}"));
                });
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with panics recorded (not printed); a panic that unwinds out
/// of `f` is returned as `Err`.
pub fn capture<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install();
    let was = CAPTURING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(was));
    result.map_err(|_| take().unwrap_or_else(|| "panic".to_string()))
}

/// The first panic recorded on this thread since the last call.
pub fn take() -> Option<String> {
    CAUGHT.with(|c| c.borrow_mut().take())
}
