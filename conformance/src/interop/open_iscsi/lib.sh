# Shell helpers of the open-iscsi suite, sourced by the guest's run script.
# Markers the host reads (one per line, all start with @@):
#   @@BEGIN step | @@PASS step | @@FAIL step reason | @@NOTE step text
#   @@PARAM step Key: Value | @@HOST step action args (host answers OK.../ERR...)
# Every command runs under `timeout`, so a hung initiator fails its step
# instead of hanging the guest. busybox's `timeout` prefers its own applets
# to programs on $PATH: call e2fsprogs by absolute path.

PORTAL=10.0.2.100:3260
CMD_TIMEOUT=90

note() { echo "@@NOTE $STEP $*"; }
fail() { echo "@@FAIL $STEP $*"; FAILED=1; return 1; }

# must DESC CMD...: run CMD (bounded by $T or CMD_TIMEOUT), show its output,
# fail the step with the command's last words if it fails.
must() {
    desc=$1; shift
    timeout -s KILL "${T:-$CMD_TIMEOUT}" "$@" >/tmp/out 2>&1
    rc=$?
    sed 's/^/  | /' /tmp/out
    [ $rc -eq 0 ] && return 0
    if [ $rc -eq 137 ]; then
        fail "$desc: timed out after ${T:-$CMD_TIMEOUT} s"
        return 1
    fi
    fail "$desc: $(grep -v '^ *$' /tmp/out | tail -n 3 | tr '\n' ' ')(exit $rc)"
}

# must_refuse DESC PATTERN CMD...: CMD must fail and say something matching
# PATTERN (grep -iE); its words become a note.
must_refuse() {
    desc=$1; pattern=$2; shift 2
    timeout -s KILL "${T:-$CMD_TIMEOUT}" "$@" >/tmp/out 2>&1
    rc=$?
    sed 's/^/  | /' /tmp/out
    if [ $rc -eq 0 ]; then
        fail "$desc: succeeded, but should have been refused"
        return 1
    fi
    said=$(grep -iE "$pattern" /tmp/out | tail -n 2 | tr '\n' ' ')
    [ -n "$said" ] || { fail "$desc: failed (exit $rc) without saying /$pattern/: $(tail -n 2 /tmp/out | tr '\n' ' ')"; return 1; }
    note "$desc refused (exit $rc): $said"
}

# host ACTION ARGS...: ask the harness to act, wait for its answer.
host() {
    echo "@@HOST $STEP $*"
    reply=
    read -t 180 reply
    case "$reply" in
        OK*) [ "$reply" = OK ] || note "host: ${reply#OK }"; return 0 ;;
        *) fail "host could not $*: ${reply:-no answer in 180 s}"; return 1 ;;
    esac
}

# Forget every session, node and discovery record.
reset_iscsi() {
    umount /mnt 2>/dev/null
    timeout -s KILL 60 iscsiadm -m node --logoutall=all >/dev/null 2>&1
    timeout -s KILL 20 iscsiadm -m node -o delete >/dev/null 2>&1
    rm -rf /etc/iscsi/nodes/* /etc/iscsi/send_targets/*
}

# node_set NAME VALUE: update the node record of $IQN at $PORTAL.
node_set() {
    must "set $1" iscsiadm -m node -T "$IQN" -p "$PORTAL" -o update -n "$1" -v "$2"
}

# Create the node record by hand: discovery answers with the target's own
# (host loopback) address, which the guest cannot reach.
new_node() {
    must "create node" iscsiadm -m node -T "$IQN" -p "$PORTAL" -o new
}

login() {
    must "login" iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
}

logout() {
    must "logout" iscsiadm -m node -T "$IQN" -p "$PORTAL" --logout
}

# lun_dev LUN: the sdX of that LUN, waiting up to 30 s for it to appear.
lun_dev() {
    i=0
    while [ $i -lt 60 ]; do
        for d in /sys/class/scsi_device/*:*:*:$1/device/block/*; do
            [ -e "$d" ] && { basename "$d"; return 0; }
        done
        sleep 0.5
        i=$((i + 1))
    done
    return 1
}

wait_for() {
    i=0
    while [ ! -e "$1" ] && [ $i -lt 40 ]; do sleep 0.25; i=$((i + 1)); done
    [ -e "$1" ]
}

# Print the negotiated parameters of the (only) session as @@PARAM lines and
# keep them in /tmp/params for checks.
params() {
    timeout -s KILL 30 iscsiadm -m session -P 3 >/tmp/session 2>&1
    awk '/Negotiated iSCSI params/ {on=1; getline; next}
         on && /\*\*\*\*/ {exit}
         on && /:/ {gsub(/^[ \t]+/, ""); print}' /tmp/session >/tmp/params
    while read -r line; do echo "@@PARAM $STEP $line"; done </tmp/params
}

# expect_param KEY VALUE: the negotiated KEY must be VALUE.
expect_param() {
    got=$(awk -F': ' -v k="$1" '$1 == k {print $2}' /tmp/params)
    [ "$got" = "$2" ] || { fail "negotiated $1 is '${got:-absent}', expected '$2'"; return 1; }
}

# Files of awkward sizes, and their checksums in /tmp/sums ($1: folder, $2: tag).
write_files() {
    mkdir -p "$1/$2" || { fail "mkdir $1/$2"; return 1; }
    for size in 0 1 511 4096 65537 1048579 3145728; do
        head -c $size /dev/urandom >"$1/$2/f$size" || { fail "write $1/$2/f$size"; return 1; }
    done
    (cd "$1" && sha256sum "$2"/f* >>/tmp/sums)
}

verify_files() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
    must "verify checksums" sh -c "cd $1 && sha256sum -c /tmp/sums" || return 1
    note "$(grep -c ': OK' /tmp/out) files verified"
}

# make_fs LUN: one partition over the whole LUN, ext4 on it, mounted on /mnt.
make_fs() {
    dev=$(lun_dev "$1") || { fail "LUN $1 never appeared"; return 1; }
    printf 'o\nn\np\n1\n\n\nw\n' >/tmp/fdisk.in
    must "partition /dev/$dev" sh -c "fdisk /dev/$dev </tmp/fdisk.in" || return 1
    PART=/dev/${dev}1
    wait_for "$PART" || { fail "$PART did not appear after partitioning"; return 1; }
    must "mke2fs -t ext4 $PART" /sbin/mke2fs -F -q -t ext4 "$PART" || return 1
    must "mount $PART" mount -t ext4 "$PART" /mnt || return 1
    : >/tmp/sums
}

# check_fs: umount, e2fsck -f -n clean, mount again.
check_fs() {
    must "sync" sync || return 1
    must "umount" umount /mnt || return 1
    must "e2fsck -f -n $PART" /sbin/e2fsck -f -n "$PART" || return 1
    note "e2fsck: $(grep -v '^ *$' /tmp/out | tail -n 1)"
    must "remount $PART" mount -t ext4 "$PART" /mnt
}

# The whole filesystem round trip on LUN $1.
fs_roundtrip() {
    make_fs "$1" || return 1
    write_files /mnt a || return 1
    check_fs || return 1
    verify_files /mnt || return 1
    must "umount" umount /mnt
}

# The kernel's connection errors during this step, as one line.
conn_errors() {
    dmesg | grep -E 'detected conn error|connection[0-9]+:[0-9]+: .*(error|fail)' | sed 's/^\[ *[0-9.]*\] *//' | tail -n 3 | tr '\n' ';'
}

run_step() {
    STEP=$1
    FAILED=
    echo "@@BEGIN $STEP"
    reset_iscsi
    dmesg -c >/dev/null  # so each step sees only its own kernel messages
    if "step_$(echo "$STEP" | tr '-' '_')" && [ -z "$FAILED" ]; then
        echo "@@PASS $STEP"
    elif [ -z "$FAILED" ]; then
        echo "@@FAIL $STEP the step stopped without saying why"
    fi
    reset_iscsi
}
