#!/usr/bin/env bash
# e2e_irq.sh: ampd warns at start when a worker lcore may run on the CPU that
# takes the block device's interrupts (dataplane/amp_irq.h), names the worker,
# the CPU, the IRQ and a fix; and says nothing when no worker is there, when
# the machine shows no block device, or the file is unreadable.
# The interrupts come from fixtures (AMPD_PROC_INTERRUPTS, a test hook), so
# the outcome does not depend on this machine's disk.
source "$(dirname "$0")/e2e_lib.sh"
need "$AMPD"
[ "$(nproc)" -ge 2 ] || skip "needs two CPUs (lcores are placed on CPUs 0 and 1)"

KEY=$(hex32)

# Firecracker, 2 vCPUs: virtio-blk on CPU 1 (this VM's own file, abridged).
cat >"$T/cpu1.txt" <<'EOF'
           CPU0       CPU1       
 24:          1          0  IO-APIC   5-edge      ACPI:Ged
 32:       1048          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq
 35:          0          1 PCI-MSIX-0000:00:02.0   0-edge      virtio1-config
 36:          0    2280331 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 41:       7262          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
NMI:          0          0   Non-maskable interrupts
LOC:    1234567    7654321   Local timer interrupts
ERR:          0
EOF
# NVMe with its busiest queue on CPU 0.
cat >"$T/cpu0.txt" <<'EOF'
            CPU0       CPU1
 122:         33          0  IR-PCI-MSI 1048576-edge      nvme0q0
 123:      51000          0  IR-PCI-MSI 1048577-edge      nvme0q1
 124:          0       9000  IR-PCI-MSI 1048578-edge      nvme0q2
 140:          0     555555  IR-PCI-MSI 520192-edge      enp0s31f6
EOF
# No block device (the disk is on the network). (One CPU, garbage, truncated
# files: dataplane/test_irq.c.)
grep -v -e -req "$T/cpu1.txt" >"$T/noblock.txt"

# start TAG FIXTURE LCORES: one ampd start over net_ring that exits when idle;
# stderr in $T/TAG.err, the summary JSON in $T/TAG.json.
start() {
  local tag=$1 fixture=$2 lcores=$3 rc=0
  AMPD_PROC_INTERRUPTS=$fixture "$AMPD" --lcores "$lcores" --no-huge --no-pci -m 512 \
    --file-prefix "ampd-$E2E_NAME-$$-$tag" --log-level=lib.eal:error --vdev net_ring0 -- \
    --data-dir "$T/data-$tag" --gateway "g1,id=1,key=$KEY" --sync none --exit-idle 50 \
    --admin-socket none --summary-json "$T/$tag.json" >"$T/$tag.out" 2>"$T/$tag.err" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$T/$tag.err"; fail "$tag: exit code $rc"; }
}
# warned TAG TEXT...: the start warned, once per worker named, with every TEXT.
warned() {
  local tag=$1 want
  shift
  grep -q "which takes the block device's interrupts" "$T/$tag.err" \
    || { cat "$T/$tag.err"; fail "$tag: no warning"; }
  for want in "$@"; do
    grep -qF -- "$want" "$T/$tag.err" || { grep warn "$T/$tag.err"; fail "$tag: warning lacks: $want"; }
  done
  say "ok: $tag: $(grep -m1 -o 'worker .*so far)' "$T/$tag.err")"
}
quiet() {
  ! grep -q "block device's interrupts" "$T/$1.err" || { cat "$T/$1.err"; fail "$1: warned"; }
  say "ok: $1: no warning"
}
# json TAG CPU WORKERS: the summary's block_irq_cpu and workers_on_block_irq_cpu.
json() {
  grep -q "\"block_irq_cpu\": $2, \"workers_on_block_irq_cpu\": $3," "$T/$1.json" \
    || { grep block_irq "$T/$1.json"; fail "$1: summary JSON: want block_irq_cpu $2, $3 worker(s)"; }
}

# The worker on the IRQ's CPU (as -l 0-1 places it): named, with a fix.
start cpu1 "$T/cpu1.txt" 0@0,1@1
warned cpu1 "worker 0 (lcore 1) runs on CPU 1," "(IRQ 36, virtio1-req.0: 2280331 so far)" \
  "--lcores 0@1,1@0" "/proc/irq/36/smp_affinity"
[ "$(grep -c "block device's interrupts" "$T/cpu1.err")" -eq 1 ] || fail "cpu1: warned more than once"
json cpu1 1 1
# The fix it suggests: the main lcore takes the IRQ's CPU, the worker the other.
start fixed "$T/cpu1.txt" 0@1,1@0
quiet fixed
json fixed 1 0
# NVMe on CPU 0, the worker there.
start cpu0 "$T/cpu0.txt" 0@1,1@0
warned cpu0 "worker 0 (lcore 1) runs on CPU 0," "(IRQ 123, nvme0q1: 51000 so far)" \
  "--lcores 0@0,1@1"
# A worker allowed on both CPUs may run on it.
start both "$T/cpu1.txt" "0@0,1@(0-1)"
warned both "worker 0 (lcore 1) may run on CPU 1,"
# Two workers on two CPUs: one shares the IRQ's CPU whatever the lcores say.
start two "$T/cpu1.txt" 0@0,1@0,2@1
warned two "worker 1 (lcore 2) runs on CPU 1," "Every other CPU already runs a worker"
! grep -q "worker 0 (lcore 1) runs on" "$T/two.err" || fail "two: worker 0 is not on CPU 1"
json two 1 1
# Nothing to say.
start noblock "$T/noblock.txt" 0@0,1@1
quiet noblock
json noblock -1 0
start nofile "$T/absent.txt" 0@0,1@1
quiet nofile
say "PASS"
