//! `iscsi-harness`: the command line.

fn main() {
    println!("iscsi-harness");
}
