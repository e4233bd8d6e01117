/* amp_sbuf.h: a growable byte buffer for building text (internal to
 * dataplane/admin; not part of any public API).
 *
 * Appends never fail loudly: on out of memory the buffer sets oom and ignores
 * further appends, so a builder checks once at the end. */
#ifndef AMP_SBUF_H
#define AMP_SBUF_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *p;        /* NUL-terminated when len > 0 and !oom */
  size_t len;
  size_t cap;
  int oom;
} amp_sbuf_t;

static inline int amp_sbuf_reserve(amp_sbuf_t *b, size_t extra) {
  if (b->oom) return -1;
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) {
    if (cap > ((size_t)-1) / 2) { b->oom = 1; return -1; }
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) { b->oom = 1; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

static inline void amp_sbuf_add(amp_sbuf_t *b, const char *s, size_t n) {
  if (amp_sbuf_reserve(b, n) < 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static inline void amp_sbuf_puts(amp_sbuf_t *b, const char *s) { amp_sbuf_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static inline void amp_sbuf_printf(amp_sbuf_t *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) { b->oom = 1; return; }
  if ((size_t)n < sizeof tmp) { amp_sbuf_add(b, tmp, (size_t)n); return; }
  if (amp_sbuf_reserve(b, (size_t)n) < 0) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* amp_sbuf_take returns the buffer (caller frees; "" is allocated for an
 * empty one) or NULL after an out-of-memory, and resets b. */
static inline char *amp_sbuf_take(amp_sbuf_t *b, size_t *len) {
  if (!b->oom && !b->p) amp_sbuf_reserve(b, 0);
  if (b->oom) { free(b->p); b->p = NULL; b->len = b->cap = 0; b->oom = 0; return NULL; }
  char *p = b->p;
  p[b->len] = 0;
  if (len) *len = b->len;
  b->p = NULL;
  b->len = b->cap = 0;
  return p;
}

static inline void amp_sbuf_free(amp_sbuf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}

#endif /* AMP_SBUF_H */
