# The steps of the open-iscsi suite, one shell function each (`step_<name>`,
# dashes as underscores). The host defines IQN, LUNS ("lun:KiB ..."), the
# CHAP credentials and the expected forced values before this file.

start_iscsid() {
    load_modules initiator
    iscsid || echo "@@WARN iscsid did not start"
    i=0
    while [ $i -lt 40 ]; do
        iscsiadm -m session >/dev/null 2>&1
        [ $? -ne 20 ] && return 0  # 20: cannot connect to iscsid
        sleep 0.25
        i=$((i + 1))
    done
    echo "@@WARN iscsid does not answer"
}

# 1. discovery finds the target; login; every LUN shows with its size.
step_discovery_login() {
    host target base || return 1
    must "discovery" iscsiadm -m discovery -t st -p "$PORTAL" || return 1
    grep -q "$IQN" /tmp/out || { fail "discovery did not list $IQN: $(cat /tmp/out | tr '\n' ' ')"; return 1; }
    note "discovery: $(grep "$IQN" /tmp/out | head -n 1)"
    reset_iscsi
    new_node || return 1
    login || return 1
    for spec in $LUNS; do
        lun=${spec%%:*}
        kib=${spec#*:}
        dev=$(lun_dev "$lun") || { fail "LUN $lun never appeared"; return 1; }
        got=$(awk -v d="$dev" '$4 == d {print $3}' /proc/partitions)
        [ "$got" = "$kib" ] || { fail "LUN $lun: /proc/partitions gives ${got:-nothing} KiB for $dev, expected $kib"; return 1; }
        note "LUN $lun is /dev/$dev: $got KiB in /proc/partitions"
    done
    params
    logout
}

# 2. partition, ext4, files, sync, umount, e2fsck clean, remount, verify.
step_ext4_roundtrip() {
    host target base || return 1
    new_node || return 1
    login || return 1
    fs_roundtrip 1 || return 1
    logout
}

# 3. the same with CRC32C header and data digests.
step_crc32c_digests() {
    host target digests || return 1
    new_node || return 1
    node_set node.conn[0].iscsi.HeaderDigest CRC32C || return 1
    node_set node.conn[0].iscsi.DataDigest CRC32C || return 1
    login || return 1
    params
    expect_param HeaderDigest CRC32C || return 1
    expect_param DataDigest CRC32C || return 1
    fs_roundtrip 1 || return 1
    logout
}

# 3b. small bursts: the target forces tiny segment and burst lengths.
step_forced_small_bursts() {
    host target small-bursts || return 1
    new_node || return 1
    login || return 1
    params
    for kv in $EXPECT_SMALL_BURSTS; do
        expect_param "${kv%%=*}" "${kv#*=}" || return 1
    done
    fs_roundtrip 1 || return 1
    logout
}

# 3c. no unsolicited data: ImmediateData=No, InitialR2T=Yes.
step_forced_r2t_only() {
    host target r2t-only || return 1
    new_node || return 1
    login || return 1
    params
    for kv in $EXPECT_R2T_ONLY; do
        expect_param "${kv%%=*}" "${kv#*=}" || return 1
    done
    fs_roundtrip 1 || return 1
    logout
}

chap_node() {
    new_node || return 1
    node_set node.session.auth.authmethod CHAP || return 1
    node_set node.session.auth.username "$1" || return 1
    node_set node.session.auth.password "$2" || return 1
}

# 4a. one-way CHAP.
step_chap_one_way() {
    host target chap || return 1
    chap_node "$CHAP_USER" "$CHAP_SECRET" || return 1
    login || return 1
    dev=$(lun_dev 1) || { fail "LUN 1 never appeared"; return 1; }
    must "read through the CHAP session" dd if=/dev/$dev of=/dev/null bs=64k count=16 || return 1
    logout
}

# 4b. mutual CHAP: the target proves itself too.
step_chap_mutual() {
    host target mutual || return 1
    chap_node "$CHAP_USER" "$CHAP_SECRET" || return 1
    node_set node.session.auth.username_in "$MUTUAL_USER" || return 1
    node_set node.session.auth.password_in "$MUTUAL_SECRET" || return 1
    login || return 1
    dev=$(lun_dev 1) || { fail "LUN 1 never appeared"; return 1; }
    must "read through the mutual CHAP session" dd if=/dev/$dev of=/dev/null bs=64k count=16 || return 1
    logout
}

# 4c. a wrong secret is refused with iscsiadm's authorization error.
step_chap_wrong_secret() {
    host target chap || return 1
    chap_node "$CHAP_USER" "not-the-secret-000" || return 1
    must_refuse "login with a wrong CHAP secret" "authoriz" \
        iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
}

# 4d. an initiator outside the allow list is refused.
step_acl_refused() {
    host target acl || return 1
    new_node || return 1
    # The target must answer with a login reject (authorization failure,
    # target not found, or another non-retryable status), not just go quiet.
    must_refuse "login from outside the allow list" "authoriz|non-retryable|not found|not allowed" \
        iscsiadm -m node -T "$IQN" -p "$PORTAL" --login
}

# 5. the connection drops in the middle of a large write; open-iscsi
# reconnects by itself, the write completes and the filesystem checks clean.
step_connection_drop() {
    host target base || return 1
    new_node || return 1
    login || return 1
    make_fs 1 || return 1
    write_files /mnt a || return 1
    sync
    host arm-cut $CUT_AFTER_BYTES || return 1
    T=240 must "16 MiB write across the cut" sh -c \
        "head -c 16777216 /dev/urandom >/mnt/big && sync" || return 1
    (cd /mnt && sha256sum big >>/tmp/sums)
    host cut-happened || return 1
    note "kernel: $(conn_errors)"
    check_fs || return 1
    verify_files /mnt || return 1
    must "umount" umount /mnt || return 1
    logout
}

# 6. the target process is killed and started again (file-backed LUN) while
# the guest holds a session: the session recovers, synced data is intact.
step_target_restart() {
    host target base || return 1
    new_node || return 1
    login || return 1
    make_fs 1 || return 1
    write_files /mnt before || return 1
    must "sync before the restart" sync || return 1
    host restart-target || return 1
    T=180 must "write after the restart" sh -c "head -c 1048576 /dev/urandom >/mnt/after && sync" || return 1
    (cd /mnt && sha256sum after >>/tmp/sums)
    errors=$(conn_errors)
    [ -n "$errors" ] || { fail "the session never noticed the restart (no connection error in dmesg)"; return 1; }
    note "kernel: $errors"
    verify_files /mnt || return 1
    check_fs || return 1
    must "umount" umount /mnt || return 1
    logout
}

# 7. the portal is unreachable: first the route to it is down (the
# walkthrough's firewall case, "No route to host"), then the target itself
# is down; iscsiadm's error is reported each time, and once both are back
# discovery and login succeed.
step_portal_unreachable() {
    host target base || return 1
    ip route add unreachable "${PORTAL%:*}/32" || { fail "cannot add an unreachable route"; return 1; }
    T=60 must_refuse "discovery while the route is down" "no route to host" \
        iscsiadm -m discovery -t st -p "$PORTAL"
    ip route del unreachable "${PORTAL%:*}/32"
    [ -n "$FAILED" ] && return 1
    host stop-target || return 1
    T=120 must_refuse "discovery while the target is down" "connect|connection|closed|refused|failed|error" \
        iscsiadm -m discovery -t st -p "$PORTAL"
    [ -n "$FAILED" ] && { host start-target; return 1; }
    host start-target || return 1
    must "discovery after the target is back" iscsiadm -m discovery -t st -p "$PORTAL" || return 1
    reset_iscsi
    new_node || return 1
    login || return 1
    lun_dev 1 >/dev/null || { fail "LUN 1 never appeared"; return 1; }
    logout
}
