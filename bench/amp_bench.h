/* amp_bench.h: shared helpers for the benchmarks (header-only).
 *
 * Timing: CLOCK_MONOTONIC in ns. Each figure is the median over AMP_BENCH_REPS
 * timed rounds, each round running an operation enough times to last ~2 ms,
 * so the noise of a shared 2-core VM shows as spread, not as a bias.
 * Results go to stdout as a table and to bench/results/<name>.json with the
 * machine (CPU model, cores, sha_ni/avx2/avx512 flags) and the git commit. */
#ifndef AMP_BENCH_H
#define AMP_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AMP_BENCH_REPS 15

static inline uint64_t amp_bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int amp_bench_cmp_dbl_(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* amp_bench_median sorts v[0..n) and returns its median. */
static inline double amp_bench_median(double *v, size_t n) {
  qsort(v, n, sizeof *v, amp_bench_cmp_dbl_);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* amp_bench_percentile of a sorted array (p in 0..100). */
static inline double amp_bench_percentile(const double *sorted, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return sorted[i < n ? i : n - 1];
}

/* Runs fn(ctx, iters) with iters calibrated to ~2 ms, AMP_BENCH_REPS times;
 * returns the median ns per iteration (divided by ops_per_iter). */
typedef void (*amp_bench_fn)(void *ctx, uint64_t iters);
static inline double amp_bench_run(amp_bench_fn fn, void *ctx, double ops_per_iter) {
  uint64_t iters = 1;
  for (;;) { /* calibrate */
    uint64_t t0 = amp_bench_now_ns();
    fn(ctx, iters);
    uint64_t dt = amp_bench_now_ns() - t0;
    if (dt > 2000000 || iters > (1ull << 30)) break;
    iters *= dt < 200000 ? 8 : 2;
  }
  double v[AMP_BENCH_REPS];
  for (int r = 0; r < AMP_BENCH_REPS; r++) {
    uint64_t t0 = amp_bench_now_ns();
    fn(ctx, iters);
    v[r] = (double)(amp_bench_now_ns() - t0) / ((double)iters * ops_per_iter);
  }
  return amp_bench_median(v, AMP_BENCH_REPS);
}

/* Machine description as a JSON object (static buffer). */
static inline const char *amp_bench_machine_json(void) {
  static char out[1024];
  char model[256] = "unknown", line[4096];
  int sha_ni = 0, avx2 = 0, avx512 = 0, cores = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f) {
    while (fgets(line, sizeof line, f)) {
      if (!strncmp(line, "model name", 10) && model[0] == 'u') {
        char *c = strchr(line, ':');
        if (c) { snprintf(model, sizeof model, "%s", c + 2); model[strcspn(model, "\n")] = 0; }
      }
      if (!strncmp(line, "processor", 9)) cores++;
      if (!strncmp(line, "flags", 5)) {
        if (strstr(line, " sha_ni")) sha_ni = 1;
        if (strstr(line, " avx2")) avx2 = 1;
        if (strstr(line, " avx512f") && strstr(line, " avx512bw")) avx512 = 1;
      }
    }
    fclose(f);
  }
  for (char *p = model; *p; p++) if (*p == '"' || *p == '\\') *p = ' ';
  char commit[64] = "unknown";
  FILE *g = popen("git rev-parse --short HEAD 2>/dev/null", "r");
  if (g) {
    if (fgets(commit, sizeof commit, g)) commit[strcspn(commit, "\n")] = 0;
    pclose(g);
  }
  snprintf(out, sizeof out,
           "{\"cpu\": \"%s\", \"cores\": %d, \"sha_ni\": %s, \"avx2\": %s, \"avx512\": %s,"
           " \"commit\": \"%s\"}",
           model, cores, sha_ni ? "true" : "false", avx2 ? "true" : "false",
           avx512 ? "true" : "false", commit);
  return out;
}

/* Opens bench/results/<name>.json below $AMP_SRC (or the cwd). */
static inline FILE *amp_bench_results_open(const char *name, char *path, size_t cap) {
  const char *src = getenv("AMP_SRC");
  snprintf(path, cap, "%s/bench/results/%s.json", src ? src : ".", name);
  FILE *f = fopen(path, "w");
  if (!f) fprintf(stderr, "cannot write %s\n", path);
  return f;
}

#endif /* AMP_BENCH_H */
