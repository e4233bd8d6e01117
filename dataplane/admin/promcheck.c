/* promcheck.c (ampd-promcheck): checks a Prometheus text exposition
 * (format 0.0.4, as ampd promises it: HELP and TYPE before samples, ampd_
 * names, counters ending in _total, no label naming a payment) read from a
 * file or stdin. Prints "ok: N families" or the first error; exit 0 or 1.
 *   ampd-promcheck [FILE]        (ampctl metrics | ampd-promcheck) */
#include "amp_promcheck.h"

int main(int argc, char **argv) {
  FILE *f = argc > 1 ? fopen(argv[1], "r") : stdin;
  if (!f) {
    fprintf(stderr, "ampd-promcheck: cannot open %s\n", argv[1]);
    return 2;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) { free(buf); buf = NULL; break; }
      buf = nb;
      cap *= 2;
    }
  }
  if (f != stdin) fclose(f);
  if (!buf) {
    fprintf(stderr, "ampd-promcheck: out of memory\n");
    return 2;
  }
  buf[n] = 0;
  if (strlen(buf) != n) {
    fprintf(stderr, "ampd-promcheck: the text holds a NUL byte\n");
    free(buf);
    return 1;
  }
  char why[512];
  if (validate(buf, why, sizeof why) != 0) {
    fprintf(stderr, "ampd-promcheck: invalid exposition: %s\n", why);
    free(buf);
    return 1;
  }
  int fams = 0;
  for (const char *p = buf; (p = strstr(p, "# TYPE ")) != NULL; p += 7) fams++;
  printf("ok: %d families\n", fams);
  free(buf);
  return 0;
}
