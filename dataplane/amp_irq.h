/* amp_irq.h: which CPU takes the block device's interrupts, from
 * /proc/interrupts; so ampd can warn at start when a worker lcore shares it.
 *
 * Why: the store commits with fdatasync; each sync completes by an interrupt
 * and a block softirq on the CPU the disk's IRQ is routed to. A worker polling
 * on that CPU loses that time and its caches: on a 2-vCPU VM a worker on the
 * virtio-blk IRQ's CPU settled 15.1k HTLC/s, 18.6k on the other CPU
 * (dataplane/README.md, Known limits).
 *
 * The text: a header line of CPU columns ("CPU0 CPU1 CPU3": online CPUs only,
 * so a column is not always its CPU's number), then one line per interrupt:
 * "label:" (the IRQ number, or NMI, LOC, ...), one decimal count per column
 * (some lines have fewer, e.g. "ERR: 0"), then the chip, the hardware IRQ
 * and trigger, and the handlers' names. A line is a block device's when its
 * part after the counts holds one of the names below (case-sensitive, as the
 * drivers spell them):
 *   "-req"   virtio-blk ("virtio1-req.0", older kernels "virtio1-requests")
 *            and virtio-scsi ("virtio2-request")
 *   "nvme"   NVMe queues ("nvme0q1")
 *   "ahci"   SATA ("ahci[0000:00:1f.2]", "ahci")
 *   "blkif"  Xen's block front end
 *   "mmc"    SD / eMMC hosts ("mmc0")
 * Not recognised: SAS/RAID HBAs (megasas, mpt3sas), Hyper-V storvsc (its
 * interrupts are vmbus channels), legacy IDE.
 *
 * Input is untrusted: any bytes, any length, no NUL needed; long lines,
 * missing columns, non-digit fields, NUL bytes, a truncated last line are
 * taken as they come and never read outside [text, text + len). Counts
 * saturate at UINT64_MAX. Columns past the AMP_IRQ_MAX_CPUS-th and CPUs
 * numbered AMP_IRQ_MAX_CPUS or more are ignored.
 *
 * Thread safety: no shared state; every function is reentrant.
 * Cost: one pass over the text (amp_irq_pick: two). Measured here: 15 ms for
 * a made-up 1024-CPU file of 800 lines (9 MB); 0.05 ms to read and pick this
 * 2-vCPU VM's file. Meant for start-up only.
 */
#ifndef AMP_IRQ_H
#define AMP_IRQ_H

#include <stddef.h>
#include <stdint.h>

#define AMP_IRQ_MAX_CPUS 1024                 /* CPU numbers 0 .. 1023 */
#define AMP_IRQ_DEFAULT_PATH "/proc/interrupts"
#define AMP_IRQ_FILE_MAX (64u << 20)          /* amp_irq_read reads at most this */

/* Block-device interrupts per CPU, from one /proc/interrupts text. */
typedef struct {
  unsigned ncpu;                              /* CPU columns in the header */
  unsigned lines;                             /* block-device lines counted */
  uint64_t cpus[AMP_IRQ_MAX_CPUS / 64];       /* bit n: CPU n has a column */
  uint64_t count[AMP_IRQ_MAX_CPUS];           /* by CPU number; 0 without a column */
} amp_irq_counts_t;

/* The CPU that takes most block-device interrupts, and its busiest line. */
typedef struct {
  int cpu;                   /* the CPU, or -1 (see amp_irq_pick) */
  unsigned ncpu;             /* CPU columns in the header (0: no header) */
  uint64_t cpu_count;        /* block-device interrupts on cpu, all lines */
  char irq[16];              /* label of the block line with most of them on cpu
                                ("36"; all digits for a real IRQ: /proc/irq/36/),
                                "" when cpu is -1 */
  char name[64];             /* that line's handler name ("virtio1-req.0"),
                                unprintable bytes as '?' */
  uint64_t irq_count;        /* that line's count on cpu */
  uint64_t cpus[AMP_IRQ_MAX_CPUS / 64];       /* bit n: CPU n has a column */
  int err;                   /* amp_irq_read: errno when the file could not be
                                read or memory ran out, else 0 */
} amp_irq_pick_t;

/* amp_irq_count sums the block-device interrupts of text[0..len) per CPU.
 * out: filled in full (zeroed first). text may be NULL when len is 0.
 * Returns 0, or -1 when the first line names no CPU column ("CPUn"); out is
 * then all zero. Cost: one pass, no allocation. */
int amp_irq_count(amp_irq_counts_t *out, const char *text, size_t len);

/* amp_irq_pick finds the CPU with the most block-device interrupts in
 * text[0..len) (ties: the lower CPU number) and, on it, the block line with
 * the most (ties: the first line).
 * out: filled in full. Returns out->cpu: the CPU, or -1 when the header has
 * fewer than two CPU columns (a worker cannot avoid the only CPU), when no
 * line is a block device's, or when they all count 0 on every CPU; also -1
 * with out->err = ENOMEM when the ~8 kB of scratch could not be allocated.
 * Cost: two passes over the text, one malloc. */
int amp_irq_pick(amp_irq_pick_t *out, const char *text, size_t len);

/* amp_irq_read reads the file at path (NULL: AMP_IRQ_DEFAULT_PATH; at most
 * AMP_IRQ_FILE_MAX bytes, the rest ignored) and returns amp_irq_pick of it.
 * Returns out->cpu, or -1; out->err is the errno of a failed open or read
 * (ENOENT, EACCES, ...) or ENOMEM, 0 when the file was read.
 * Cost: the read (the kernel formats /proc/interrupts on the fly) and
 * amp_irq_pick; a buffer as large as the file, freed before returning. */
int amp_irq_read(amp_irq_pick_t *out, const char *path);

/* amp_irq_has_cpu: 1 when CPU cpu has a column in the header (bit set in a
 * cpus[] above), else 0 (also for cpu outside 0 .. AMP_IRQ_MAX_CPUS - 1). */
static inline int amp_irq_has_cpu(const uint64_t *cpus, int cpu) {
  return cpu >= 0 && cpu < AMP_IRQ_MAX_CPUS && ((cpus[cpu / 64] >> (cpu % 64)) & 1);
}

#endif /* AMP_IRQ_H */
