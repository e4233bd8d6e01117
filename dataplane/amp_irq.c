/* amp_irq.c: block-device interrupts per CPU from /proc/interrupts
 * (amp_irq.h). Everything works on [p, e) spans of the caller's bytes: no
 * NUL is assumed, no pointer goes past e. */
#include "amp_irq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Handler names that mark a block device's line (amp_irq.h says which). */
static const char *const BLOCK_NAMES[] = {"-req", "nvme", "ahci", "blkif", "mmc"};
#define N_BLOCK_NAMES (sizeof BLOCK_NAMES / sizeof BLOCK_NAMES[0])

static int is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static const char *skip_blank(const char *p, const char *e) {
  while (p < e && is_blank(*p)) p++;
  return p;
}

static const char *skip_token(const char *p, const char *e) {
  while (p < e && !is_blank(*p)) p++;
  return p;
}

static int all_digits(const char *t, const char *e) {
  if (t == e) return 0;
  for (; t < e; t++)
    if (!is_digit(*t)) return 0;
  return 1;
}

/* A run of digits as a number, saturating at UINT64_MAX. */
static uint64_t parse_u64(const char *t, const char *e) {
  uint64_t v = 0;
  for (; t < e; t++) {
    uint64_t d = (uint64_t)(*t - '0');
    if (v > (UINT64_MAX - d) / 10) return UINT64_MAX;
    v = v * 10 + d;
  }
  return v;
}

static uint64_t add_sat(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

/* Copies [t, e) into dst (cap >= 1), NUL-terminated, cut to fit, with
 * unprintable bytes as '?' (the name goes into a log line). */
static void copy_clean(char *dst, size_t cap, const char *t, const char *e) {
  size_t n = 0;
  for (; t < e && n + 1 < cap; t++, n++) dst[n] = (*t >= 0x20 && *t < 0x7f) ? *t : '?';
  dst[n] = 0;
}

/* The header's columns: col[i] = the CPU number of column i, or -1 for a
 * column whose CPU is out of range. Tokens that are not "CPUn" are no
 * column. Returns the number of columns (at most AMP_IRQ_MAX_CPUS). */
static unsigned parse_header(int16_t *col, uint64_t *cpus, const char *p, const char *e) {
  unsigned n = 0;
  for (p = skip_blank(p, e); p < e && n < AMP_IRQ_MAX_CPUS; p = skip_blank(p, e)) {
    const char *t = p;
    p = skip_token(p, e);
    if (p - t < 4 || memcmp(t, "CPU", 3) != 0 || !all_digits(t + 3, p)) continue;
    uint64_t cpu = parse_u64(t + 3, p);
    col[n] = cpu < AMP_IRQ_MAX_CPUS ? (int16_t)cpu : -1;
    if (col[n] >= 0) cpus[cpu / 64] |= 1ULL << (cpu % 64);
    n++;
  }
  return n;
}

/* The first block-device name in [t, e): where its handler token starts and
 * ends (a trailing ',' of a shared line's list left out). Returns 1 if any. */
static int find_block_name(const char *t, const char *e, const char **ns, const char **ne) {
  const char *hit = NULL;
  for (size_t k = 0; k < N_BLOCK_NAMES; k++) {
    size_t kl = strlen(BLOCK_NAMES[k]);
    const char *h = t < e ? memmem(t, (size_t)(e - t), BLOCK_NAMES[k], kl) : NULL;
    if (h && (!hit || h < hit)) hit = h;
  }
  if (!hit) return 0;
  const char *s = hit, *f = hit;
  while (s > t && !is_blank(s[-1])) s--;
  f = skip_token(f, e);
  if (f > s && f[-1] == ',') f--;
  *ns = s;
  *ne = f;
  return 1;
}

/* What one pass over the text does: sum the counts of block lines per CPU
 * (counts, if not NULL), and find the block line with the most interrupts on
 * CPU want (pick, if want >= 0). Returns the number of header columns, or 0
 * when the header names no CPU. */
static unsigned scan(const char *text, size_t len, amp_irq_counts_t *counts, int want,
                     amp_irq_pick_t *pick) {
  int16_t col[AMP_IRQ_MAX_CPUS];
  uint64_t cpus[AMP_IRQ_MAX_CPUS / 64];
  memset(cpus, 0, sizeof cpus);
  if (!text || !len) return 0;
  const char *p = text, *end = text + len;
  const char *le = memchr(p, '\n', len);
  if (!le) le = end;
  unsigned ncol = parse_header(col, cpus, p, le);
  if (counts) memcpy(counts->cpus, cpus, sizeof cpus);
  if (!ncol) return 0;
  uint64_t best = 0;
  for (p = le < end ? le + 1 : end; p < end; p = le < end ? le + 1 : end) {
    le = memchr(p, '\n', (size_t)(end - p));
    if (!le) le = end;
    /* label: the first token, ending in ':' */
    const char *q = skip_blank(p, le), *ls = q;
    q = skip_token(q, le);
    if (q == ls || q[-1] != ':') continue;
    const char *lend = q - 1;
    /* the counts, as many as there are digit tokens (up to one a column) */
    const char *cs = q, *tail = q;
    for (unsigned c = 0; c < ncol; c++) {
      const char *t = skip_blank(tail, le), *te = skip_token(t, le);
      if (!all_digits(t, te)) break;
      tail = te;
    }
    const char *ns, *ne;
    if (!find_block_name(tail, le, &ns, &ne)) continue;
    if (counts) counts->lines++;
    uint64_t on_want = 0;
    q = cs;
    for (unsigned c = 0; c < ncol; c++) {
      const char *t = skip_blank(q, tail), *te = skip_token(t, tail);
      if (t == te) break;
      uint64_t v = parse_u64(t, te);
      q = te;
      if (col[c] < 0) continue;
      if (counts) counts->count[col[c]] = add_sat(counts->count[col[c]], v);
      if (col[c] == want) on_want = add_sat(on_want, v);
    }
    if (pick && want >= 0 && on_want > best) {
      best = on_want;
      pick->irq_count = on_want;
      copy_clean(pick->irq, sizeof pick->irq, ls, lend);
      copy_clean(pick->name, sizeof pick->name, ns, ne);
    }
  }
  return ncol;
}

static unsigned popcount_cpus(const uint64_t *cpus) {
  unsigned n = 0;
  for (unsigned i = 0; i < AMP_IRQ_MAX_CPUS / 64; i++) n += (unsigned)__builtin_popcountll(cpus[i]);
  return n;
}

int amp_irq_count(amp_irq_counts_t *out, const char *text, size_t len) {
  memset(out, 0, sizeof *out);
  if (!scan(text, len, out, -1, NULL)) {
    memset(out, 0, sizeof *out);
    return -1;
  }
  out->ncpu = popcount_cpus(out->cpus);
  return 0;
}

int amp_irq_pick(amp_irq_pick_t *out, const char *text, size_t len) {
  memset(out, 0, sizeof *out);
  out->cpu = -1;
  amp_irq_counts_t *c = malloc(sizeof *c);
  if (!c) {
    out->err = ENOMEM;
    return -1;
  }
  if (amp_irq_count(c, text, len) == 0) {
    out->ncpu = c->ncpu;
    memcpy(out->cpus, c->cpus, sizeof out->cpus);
    int cpu = -1;
    for (int i = 0; i < AMP_IRQ_MAX_CPUS; i++)
      if (c->count[i] && (cpu < 0 || c->count[i] > c->count[cpu])) cpu = i;
    if (cpu >= 0 && c->ncpu >= 2) {
      out->cpu = cpu;
      out->cpu_count = c->count[cpu];
      scan(text, len, NULL, cpu, out);
    }
  }
  free(c);
  return out->cpu;
}

int amp_irq_read(amp_irq_pick_t *out, const char *path) {
  memset(out, 0, sizeof *out);
  out->cpu = -1;
  int fd = open(path ? path : AMP_IRQ_DEFAULT_PATH, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    out->err = errno;
    return -1;
  }
  /* /proc files say size 0: read until the end, doubling the buffer. */
  size_t cap = 64 << 10, len = 0;
  char *buf = malloc(cap);
  int err = buf ? 0 : ENOMEM;
  while (!err && len < AMP_IRQ_FILE_MAX) {
    if (len == cap) {
      size_t ncap = cap * 2 > AMP_IRQ_FILE_MAX ? AMP_IRQ_FILE_MAX : cap * 2;
      char *nb = realloc(buf, ncap);
      if (!nb) {
        err = ENOMEM;
        break;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) err = errno;
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  if (!err) amp_irq_pick(out, buf, len);
  else out->err = err;
  free(buf);
  return out->cpu;
}
