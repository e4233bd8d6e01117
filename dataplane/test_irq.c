/* test_irq.c: block-device interrupts per CPU from /proc/interrupts texts
 * (amp_irq.h): real machines' files with exact counts and the CPU chosen,
 * every malformed class, truncation at every byte, and random mutations
 * (under ASan every buffer is exactly as long as its text). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amp_irq.h"
#include "amp_test.h"

/* This VM (Firecracker, 2 vCPUs, virtio-blk on CPU 1), abridged. */
static const char FIRECRACKER[] =
  "           CPU0       CPU1       \n"
  " 24:          1          0  IO-APIC   5-edge      ACPI:Ged\n"
  " 31:          0       2222 PCI-MSIX-0000:00:01.0   3-edge      virtio0-stats\n"
  " 32:       1048          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq\n"
  " 35:          0          1 PCI-MSIX-0000:00:02.0   0-edge      virtio1-config\n"
  " 36:          0    2280331 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0\n"
  " 38:          0        820 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n"
  " 41:       7262          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx\n"
  " 42:          0      21982 PCI-MSIX-0000:00:04.0   2-edge      virtio3-tx\n"
  "NMI:          0          0   Non-maskable interrupts\n"
  "LOC:    1234567    7654321   Local timer interrupts\n"
  "ERR:          0\n";

/* A 4-CPU machine with two NVMe drives (a queue per CPU) and a SATA disk. */
static const char NVME[] =
  "            CPU0       CPU1       CPU2       CPU3       \n"
  "   0:         22          0          0          0  IR-IO-APIC    2-edge      timer\n"
  "   8:          0          0          0          1  IR-IO-APIC    8-edge      rtc0\n"
  " 122:          0          0         33          0  IR-PCI-MSI 1048576-edge      nvme0q0\n"
  " 123:       5000          0          0          0  IR-PCI-MSI 1048577-edge      nvme0q1\n"
  " 124:          0      12000          0          0  IR-PCI-MSI 1048578-edge      nvme0q2\n"
  " 125:          0          0       7000          0  IR-PCI-MSI 1048579-edge      nvme0q3\n"
  " 126:          0          0          0      11000  IR-PCI-MSI 1048580-edge      nvme0q4\n"
  " 127:          0       3000          0          0  IR-PCI-MSI 1050624-edge      nvme1q1\n"
  " 130:        100          0          0          0  IR-PCI-MSI 327680-edge      xhci_hcd\n"
  " 131:          0          0        900          0  IR-PCI-MSI 376832-edge      ahci[0000:00:17.0]\n"
  " 140:          0          0          0       5555  IR-PCI-MSI 520192-edge      enp0s31f6\n"
  "NMI:          1          2          3          4   Non-maskable interrupts\n"
  "LOC:     999999     999999     999999     999999   Local timer interrupts\n"
  "ERR:          0\n"
  "MIS:          0\n";

/* The same machine with CPU 1 offline: the columns are CPUs 0, 2, 3. */
static const char OFFLINE[] =
  "            CPU0       CPU2       CPU3       \n"
  " 123:       5000          0          0  IR-PCI-MSI 1048577-edge      nvme0q1\n"
  " 125:          0       7000          0  IR-PCI-MSI 1048579-edge      nvme0q3\n"
  " 126:          0          0      11000  IR-PCI-MSI 1048580-edge      nvme0q4\n";

/* A machine without a block device's IRQ (network boot, disk over the net). */
static const char NO_BLOCK[] =
  "           CPU0       CPU1       \n"
  " 24:          1          0  IO-APIC   5-edge      ACPI:Ged\n"
  " 32:       1048          0 PCI-MSIX-0000:00:01.0   4-edge      virtio0-reporting_vq\n"
  " 41:       7262          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx\n"
  " 42:          0      21982 PCI-MSIX-0000:00:04.0   2-edge      virtio3-tx\n"
  "LOC:    1234567    7654321   Local timer interrupts\n";

/* Other drivers: Xen blkfront, an eMMC host, virtio-scsi, shared lines. */
static const char OTHERS[] =
  "           CPU0       CPU1       CPU2\n"
  " 75:        100       9000          0  xen-dyn    -edge   blkif\n"
  " 25:          0          0       4000  GICv2  66 Level  mmc0\n"
  " 40:          0          0       3000  PCI-MSI 1-edge  virtio2-request\n"
  " 11:       2500          0          0  IO-APIC  11-fasteoi   ahci, i8042\n"
  " 12:          0        700          0  IO-APIC  12-fasteoi   i8042, ahci[0000:00:1f.2]\n"
  "IPI0:        55         66         77       Rescheduling interrupts\n";

/* Runs count and pick on a copy of text exactly len bytes long (no NUL after
 * it: ASan sees any read past the end). Returns pick's CPU. */
static int run(const char *text, size_t len, amp_irq_counts_t *c, amp_irq_pick_t *p) {
  char *buf = malloc(len ? len : 1);
  AMP_REQUIRE(buf != NULL);
  if (len) memcpy(buf, text, len);
  amp_irq_count(c, len ? buf : NULL, len);
  int cpu = amp_irq_pick(p, len ? buf : NULL, len);
  free(buf);
  AMP_CHECK_EQ(cpu, p->cpu);
  return cpu;
}

static amp_irq_counts_t C;   /* 8 kB: not on the stack */

static void test_firecracker(void) {
  amp_irq_pick_t p;
  AMP_CHECK_EQ(amp_irq_count(&C, FIRECRACKER, strlen(FIRECRACKER)), 0);
  AMP_CHECK_EQ(C.ncpu, 2);
  AMP_CHECK_EQ(C.lines, 1);
  AMP_CHECK_EQ(C.count[0], 0);
  AMP_CHECK_EQ(C.count[1], 2280331);
  AMP_CHECK_EQ(C.count[2], 0);
  AMP_CHECK(amp_irq_has_cpu(C.cpus, 0) && amp_irq_has_cpu(C.cpus, 1));
  AMP_CHECK(!amp_irq_has_cpu(C.cpus, 2) && !amp_irq_has_cpu(C.cpus, -1));
  AMP_CHECK(!amp_irq_has_cpu(C.cpus, AMP_IRQ_MAX_CPUS));
  AMP_CHECK_EQ(run(FIRECRACKER, strlen(FIRECRACKER), &C, &p), 1);
  AMP_CHECK_EQ(p.ncpu, 2);
  AMP_CHECK_EQ(p.cpu_count, 2280331);
  AMP_CHECK(!strcmp(p.irq, "36"));
  AMP_CHECK(!strcmp(p.name, "virtio1-req.0"));
  AMP_CHECK_EQ(p.irq_count, 2280331);
  AMP_CHECK_EQ(p.err, 0);
}

static void test_nvme(void) {
  amp_irq_pick_t p;
  AMP_CHECK_EQ(run(NVME, strlen(NVME), &C, &p), 1);
  AMP_CHECK_EQ(C.ncpu, 4);
  AMP_CHECK_EQ(C.lines, 7);   /* nvme0q0..q4, nvme1q1, ahci */
  AMP_CHECK_EQ(C.count[0], 5000);
  AMP_CHECK_EQ(C.count[1], 12000 + 3000);
  AMP_CHECK_EQ(C.count[2], 33 + 7000 + 900);
  AMP_CHECK_EQ(C.count[3], 11000);
  AMP_CHECK_EQ(p.cpu_count, 15000);
  AMP_CHECK(!strcmp(p.irq, "124"));
  AMP_CHECK(!strcmp(p.name, "nvme0q2"));
  AMP_CHECK_EQ(p.irq_count, 12000);

  /* CPU 1 offline: columns are CPUs 0, 2, 3; CPU 3 takes most. */
  AMP_CHECK_EQ(run(OFFLINE, strlen(OFFLINE), &C, &p), 3);
  AMP_CHECK_EQ(C.ncpu, 3);
  AMP_CHECK(!amp_irq_has_cpu(C.cpus, 1) && amp_irq_has_cpu(C.cpus, 3));
  AMP_CHECK_EQ(C.count[0], 5000);
  AMP_CHECK_EQ(C.count[1], 0);
  AMP_CHECK_EQ(C.count[2], 7000);
  AMP_CHECK_EQ(C.count[3], 11000);
  AMP_CHECK(!strcmp(p.irq, "126") && !strcmp(p.name, "nvme0q4"));
}

static void test_no_block(void) {
  amp_irq_pick_t p;
  AMP_CHECK_EQ(run(NO_BLOCK, strlen(NO_BLOCK), &C, &p), -1);
  AMP_CHECK_EQ(C.ncpu, 2);
  AMP_CHECK_EQ(C.lines, 0);
  AMP_CHECK_EQ(C.count[0] + C.count[1], 0);
  AMP_CHECK_EQ(p.ncpu, 2);
  AMP_CHECK_EQ(p.irq[0], 0);
  AMP_CHECK_EQ(p.name[0], 0);
  /* a block line that counted nothing yet: still none */
  static const char zero[] = "  CPU0 CPU1\n 36: 0 0 PCI-MSIX 1-edge virtio1-req.0\n";
  AMP_CHECK_EQ(run(zero, strlen(zero), &C, &p), -1);
  AMP_CHECK_EQ(C.lines, 1);
}

static void test_others(void) {
  amp_irq_pick_t p;
  AMP_CHECK_EQ(run(OTHERS, strlen(OTHERS), &C, &p), 1);
  AMP_CHECK_EQ(C.ncpu, 3);
  AMP_CHECK_EQ(C.lines, 5);   /* IPI0 is not a block line */
  AMP_CHECK_EQ(C.count[0], 100 + 2500);
  AMP_CHECK_EQ(C.count[1], 9000 + 700);
  AMP_CHECK_EQ(C.count[2], 4000 + 3000);
  AMP_CHECK(!strcmp(p.irq, "75") && !strcmp(p.name, "blkif"));
  AMP_CHECK_EQ(p.irq_count, 9000);
  static const char mmc[] = "CPU0 CPU1\n 25: 0 4000 GICv2 66 Level mmc0\n";
  AMP_CHECK_EQ(run(mmc, strlen(mmc), &C, &p), 1);
  AMP_CHECK(!strcmp(p.name, "mmc0"));
  static const char scsi[] = "CPU0 CPU1\n 40: 3000 0 PCI-MSI 1-edge virtio2-request\n";
  AMP_CHECK_EQ(run(scsi, strlen(scsi), &C, &p), 0);
  AMP_CHECK(!strcmp(p.name, "virtio2-request"));
  /* the names of shared lines: the block handler's own token, no comma */
  static const char shared[] = "CPU0 CPU1\n 11: 2500 0 IO-APIC 11-fasteoi ahci, i8042\n";
  AMP_CHECK_EQ(run(shared, strlen(shared), &C, &p), 0);
  AMP_CHECK(!strcmp(p.name, "ahci"));
  static const char shared2[] = "CPU0 CPU1\n 12: 0 700 IO 12-fasteoi i8042, ahci[0000:00:1f.2]\n";
  AMP_CHECK_EQ(run(shared2, strlen(shared2), &C, &p), 1);
  AMP_CHECK(!strcmp(p.name, "ahci[0000:00:1f.2]"));
  /* ties: the lower CPU; on it, the first line */
  static const char tie[] = "CPU0 CPU1 CPU2\n 5: 0 7 7 nvme0q1\n 6: 7 0 0 nvme0q2\n";
  AMP_CHECK_EQ(run(tie, strlen(tie), &C, &p), 0);
  AMP_CHECK(!strcmp(p.irq, "6"));
  static const char tie2[] = "CPU0 CPU1\n 5: 0 7 nvme0q1\n 6: 0 7 nvme0q2\n";
  AMP_CHECK_EQ(run(tie2, strlen(tie2), &C, &p), 1);
  AMP_CHECK(!strcmp(p.irq, "5") && p.irq_count == 7 && p.cpu_count == 14);
}

static void test_malformed(void) {
  amp_irq_pick_t p;
  /* empty, NULL, a header without CPUs, a header only, one CPU */
  AMP_CHECK_EQ(amp_irq_count(&C, NULL, 0), -1);
  AMP_CHECK_EQ(amp_irq_count(&C, "", 0), -1);
  AMP_CHECK_EQ(amp_irq_pick(&p, NULL, 0), -1);
  AMP_CHECK_EQ(p.ncpu, 0);
  AMP_CHECK_EQ(run("\n", 1, &C, &p), -1);
  static const char nocpu[] = "hello world\n 36: 0 5 virtio1-req.0\n";
  AMP_CHECK_EQ(run(nocpu, strlen(nocpu), &C, &p), -1);
  AMP_CHECK_EQ(amp_irq_count(&C, nocpu, strlen(nocpu)), -1);
  AMP_CHECK_EQ(C.ncpu + C.lines + C.count[0] + C.count[1], 0);
  static const char cpuish[] = "CPU CPUx CPU-1 XCPU0 cpu0\n 36: 0 5 virtio1-req.0\n";
  AMP_CHECK_EQ(amp_irq_count(&C, cpuish, strlen(cpuish)), -1);
  static const char hdr[] = "           CPU0       CPU1       \n";
  AMP_CHECK_EQ(run(hdr, strlen(hdr), &C, &p), -1);
  AMP_CHECK_EQ(amp_irq_count(&C, hdr, strlen(hdr)), 0);
  AMP_CHECK_EQ(C.ncpu, 2);
  AMP_CHECK_EQ(C.lines, 0);
  AMP_CHECK_EQ(run(hdr, strlen(hdr) - 1, &C, &p), -1);   /* no newline */
  AMP_CHECK_EQ(p.ncpu, 2);
  static const char one[] = "           CPU0\n 36:  500  PCI-MSIX 1-edge virtio1-req.0\n";
  AMP_CHECK_EQ(run(one, strlen(one), &C, &p), -1);
  AMP_CHECK_EQ(C.ncpu, 1);
  AMP_CHECK_EQ(C.count[0], 500);
  AMP_CHECK_EQ(p.ncpu, 1);

  /* Non-digit fields end the counts; a huge count saturates; a line without
   * a label is skipped; an empty label is a label; CRLF; no final newline. */
  static const char bad[] =
    "           CPU0       CPU1\r\n"
    " 36:          0    22x0331 PCI-MSIX   1-edge  virtio1-req.0\r\n"
    " 37:         12  PCI-MSIX  virtio5-req.0\n"
    " 38:  99999999999999999999999  5  nvme0q1\n"
    " 39          5   5 nvme0q2\n"
    " 40:\n"
    "\n"
    ":  5 5 nvme0q3\n"
    "41: -5 7 nvme0q4\n"
    " 42:  18446744073709551615 1 nvme0q5";
  AMP_CHECK_EQ(run(bad, strlen(bad), &C, &p), 0);
  AMP_CHECK_EQ(C.lines, 6);   /* 36, 37, 38, '', 41, 42 */
  AMP_CHECK_EQ(C.count[0], UINT64_MAX);
  AMP_CHECK_EQ(C.count[1], 5 + 5 + 1);
  AMP_CHECK(!strcmp(p.irq, "38") && !strcmp(p.name, "nvme0q1"));
  AMP_CHECK(p.irq_count == UINT64_MAX && p.cpu_count == UINT64_MAX);

  /* Unprintable bytes in a name (a NUL too), and a name longer than name[] */
  static const char nul[] = "CPU0 CPU1\n 36: 0 9 x virtio1-req.\0\x01\xff!\n";
  AMP_CHECK_EQ(run(nul, sizeof nul - 1, &C, &p), 1);
  AMP_CHECK(!strcmp(p.name, "virtio1-req.??" "?!"));
  char longname[600];
  int n = snprintf(longname, sizeof longname, "CPU0 CPU1 CPU2\n 777777777777777777777: 0 0 3 ");
  memset(longname + n, 'x', 200);
  memcpy(longname + n + 200, "nvme", 4);
  memset(longname + n + 204, 'y', 200);
  AMP_CHECK_EQ(run(longname, (size_t)n + 404, &C, &p), 2);
  AMP_CHECK_EQ(strlen(p.name), sizeof p.name - 1);
  AMP_CHECK_EQ(strlen(p.irq), sizeof p.irq - 1);
  AMP_CHECK(p.name[0] == 'x' && !strncmp(p.irq, "777777777777777", 15));
}

/* A header of ncol CPUs, then lines whose count on column i is i + 1. */
static char *wide(unsigned ncol, unsigned nlines, size_t *len) {
  size_t cap = (size_t)(ncol + 1) * 12 * (nlines + 1) + 1024, n = 0;
  char *t = malloc(cap);
  AMP_REQUIRE(t != NULL);
  for (unsigned i = 0; i < ncol; i++) n += (size_t)snprintf(t + n, cap - n, " CPU%u", i);
  t[n++] = '\n';
  for (unsigned l = 0; l < nlines; l++) {
    n += (size_t)snprintf(t + n, cap - n, "%4u:", 100 + l);
    for (unsigned i = 0; i < ncol; i++) n += (size_t)snprintf(t + n, cap - n, " %10u", i + 1);
    n += (size_t)snprintf(t + n, cap - n, "  PCI-MSI %u-edge  nvme0q%u\n", l, l);
  }
  *len = n;
  return t;
}

static void test_many_cpus(void) {
  amp_irq_pick_t p;
  /* numbered past the limit, or absurdly: a column without a CPU */
  static const char high[] =
    "CPU0 CPU1023 CPU1024 CPU99999999999999999999999\n 5: 1 2 3 4 x nvme0q1\n";
  AMP_CHECK_EQ(run(high, strlen(high), &C, &p), 1023);
  AMP_CHECK_EQ(C.ncpu, 2);
  AMP_CHECK_EQ(C.count[0], 1);
  AMP_CHECK_EQ(C.count[1023], 2);
  AMP_CHECK_EQ(p.irq_count, 2);
  /* 1030 columns: the first 1024 counted, the rest is text */
  size_t len;
  char *t = wide(1030, 3, &len);
  AMP_CHECK_EQ(run(t, len, &C, &p), 1023);
  AMP_CHECK_EQ(C.ncpu, AMP_IRQ_MAX_CPUS);
  AMP_CHECK_EQ(C.lines, 3);
  AMP_CHECK_EQ(C.count[0], 3);
  AMP_CHECK_EQ(C.count[1023], 3 * 1024);
  AMP_CHECK(!strcmp(p.irq, "100") && !strcmp(p.name, "nvme0q0"));
  AMP_CHECK_EQ(p.irq_count, 1024);
  free(t);
}

/* Every prefix of the Firecracker text: the CPU is 1 exactly when line 36
 * got as far as its "-req". */
static void test_truncated(void) {
  amp_irq_pick_t p;
  size_t full = strlen(FIRECRACKER);
  size_t need = (size_t)(strstr(FIRECRACKER, "virtio1-req") - FIRECRACKER) + strlen("virtio1-req");
  unsigned bad = 0;
  for (size_t len = 0; len <= full; len++) {
    int cpu = run(FIRECRACKER, len, &C, &p);
    int want = len >= need ? 1 : -1;
    if (cpu != want || (cpu == 1 && (p.irq_count != 2280331 || strcmp(p.irq, "36")))) {
      if (!bad++) fprintf(stderr, "prefix of %zu bytes: cpu %d, want %d\n", len, cpu, want);
    }
  }
  AMP_CHECK_EQ(bad, 0);
}

/* Random mutations of the fixtures: whatever comes out must be consistent. */
static void test_mutations(uint64_t *rs) {
  static const char *const base[] = {FIRECRACKER, NVME, OTHERS, OFFLINE};
  static const char alphabet[] = " \t\n:0123456789CPUnvme-reqahcix,\r";
  amp_irq_pick_t p;
  unsigned bad = 0;
  for (int iter = 0; iter < 20000; iter++) {
    const char *b = base[amp_test_rand(rs) % 4];
    size_t len = strlen(b);
    char tmp[4096];
    AMP_REQUIRE(len + 64 <= sizeof tmp);
    memcpy(tmp, b, len);
    int edits = 1 + (int)(amp_test_rand(rs) % 8);
    for (int k = 0; k < edits && len; k++) {
      uint64_t r = amp_test_rand(rs);
      size_t at = (size_t)(r >> 8) % len;
      switch (r % 5) {
      case 0: tmp[at] = (char)(r >> 40); break;                          /* any byte */
      case 1: tmp[at] = alphabet[(r >> 40) % (sizeof alphabet - 1)]; break;
      case 2: memmove(tmp + at, tmp + at + 1, len - at - 1); len--; break;   /* delete */
      case 3:
        if (len + 1 < sizeof tmp) {
          memmove(tmp + at + 1, tmp + at, len - at);
          tmp[at] = alphabet[(r >> 40) % (sizeof alphabet - 1)];
          len++;
        }
        break;
      default: len = at; break;                                          /* truncate */
      }
    }
    int cpu = run(tmp, len, &C, &p);
    int ok = cpu == -1 || (amp_irq_has_cpu(C.cpus, cpu) && p.cpu_count == C.count[cpu] &&
                           p.irq_count > 0 && p.irq_count <= p.cpu_count && C.ncpu >= 2);
    for (int i = 0; ok && cpu >= 0 && i < AMP_IRQ_MAX_CPUS; i++)
      ok = C.count[i] < C.count[cpu] || (C.count[i] == C.count[cpu] && i >= cpu);
    ok = ok && memchr(p.irq, 0, sizeof p.irq) && memchr(p.name, 0, sizeof p.name);
    ok = ok && p.ncpu == C.ncpu && (cpu >= 0 || (!p.irq[0] && !p.name[0]));
    if (!ok && !bad++) fprintf(stderr, "mutation %d: inconsistent (cpu %d)\n", iter, cpu);
  }
  AMP_CHECK_EQ(bad, 0);
}

static void test_read(void) {
  amp_irq_pick_t p;
  char path[] = "/tmp/test_irq.XXXXXX";
  int fd = mkstemp(path);
  AMP_REQUIRE(fd >= 0);
  /* larger than the first read buffer (64 kB): the buffer grows */
  size_t len;
  char *t = wide(64, 200, &len);
  AMP_REQUIRE(len > (128u << 10));
  AMP_REQUIRE(write(fd, t, len) == (ssize_t)len);
  close(fd);
  AMP_CHECK_EQ(amp_irq_read(&p, path), 63);
  AMP_CHECK_EQ(p.err, 0);
  AMP_CHECK_EQ(p.cpu_count, 64 * 200);
  AMP_CHECK(!strcmp(p.irq, "100") && !strcmp(p.name, "nvme0q0"));
  free(t);
  FILE *f = fopen(path, "w");
  AMP_REQUIRE(f != NULL);
  fputs(FIRECRACKER, f);
  fclose(f);
  AMP_CHECK_EQ(amp_irq_read(&p, path), 1);
  AMP_CHECK(!strcmp(p.name, "virtio1-req.0"));
  f = fopen(path, "w");
  AMP_REQUIRE(f != NULL);
  fclose(f);
  AMP_CHECK_EQ(amp_irq_read(&p, path), -1);   /* empty */
  AMP_CHECK_EQ(p.err, 0);
  unlink(path);
  AMP_CHECK_EQ(amp_irq_read(&p, path), -1);
  AMP_CHECK_EQ(p.err, ENOENT);
  AMP_CHECK_EQ(amp_irq_read(&p, "/"), -1);
  AMP_CHECK_EQ(p.err, EISDIR);
  /* this machine's own file: whatever it says, consistently */
  int cpu = amp_irq_read(&p, NULL);
  fprintf(stderr, "this machine: block IRQ CPU %d (%s %s: %llu), %u CPUs, err %d\n", cpu,
          p.irq, p.name, (unsigned long long)p.irq_count, p.ncpu, p.err);
  AMP_CHECK(cpu == -1 || (amp_irq_has_cpu(p.cpus, cpu) && p.name[0]));
}

int main(void) {
  uint64_t rs = amp_test_seed() | 1;
  test_firecracker();
  test_nvme();
  test_no_block();
  test_others();
  test_malformed();
  test_many_cpus();
  test_truncated();
  test_mutations(&rs);
  test_read();
  return amp_test_done();
}
