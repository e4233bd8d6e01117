/* amp_promcheck.h: a validator of the Prometheus text exposition format
 * 0.0.4, header-only (static functions), shared by test_metrics.c and the
 * ampd-promcheck tool (promcheck.c) that the e2e tests run on `ampctl
 * metrics` and GET /metrics of a live ampd. */
#ifndef AMP_PROMCHECK_H
#define AMP_PROMCHECK_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a validator of the text exposition format 0.0.4 ----
 * Stricter than Prometheus where ampd promises more: every family has HELP
 * and TYPE before its samples, all names start with ampd_, counters end in
 * _total, no empty lines, no label that identifies a payment. */

#define MAXFAM 256
#define MAXSER 4096

typedef struct {
  char name[128];
  char type[16];
  int help, typed, samples, closed;
} vfam_t;

typedef struct {
  vfam_t fam[MAXFAM];
  int nfam;
  char series[MAXSER][256];   /* name{sorted labels} seen, for duplicates */
  int nser;
  int cur;                    /* family of the last line, -1 none */
  /* histogram state per (family, labels without le) */
  char hkey[256];
  double last_le;
  double last_count;
  int saw_inf;
  double inf_count;
  char err[256];
} vstate_t;

static int name_char(char c, int first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

static int label_char(char c, int first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

static int parse_value(const char *s, double *v) {
  if (!strcmp(s, "+Inf")) { *v = INFINITY; return 0; }
  if (!strcmp(s, "-Inf")) { *v = -INFINITY; return 0; }
  if (!strcmp(s, "NaN")) { *v = NAN; return 0; }
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  if (end == s || *end || errno) return -1;
  for (const char *p = s; *p; p++)   /* plain decimal or exponent forms only */
    if (!strchr("0123456789.eE+-", *p)) return -1;
  return 0;
}

static vfam_t *find_fam(vstate_t *v, const char *name) {
  for (int i = 0; i < v->nfam; i++)
    if (!strcmp(v->fam[i].name, name)) return &v->fam[i];
  return NULL;
}

static vfam_t *get_fam(vstate_t *v, const char *name) {
  vfam_t *f = find_fam(v, name);
  if (f || v->nfam == MAXFAM) return f;
  f = &v->fam[v->nfam++];
  memset(f, 0, sizeof *f);
  snprintf(f->name, sizeof f->name, "%s", name);
  return f;
}

#define VFAIL(...) do { snprintf(v->err, sizeof v->err, __VA_ARGS__); return -1; } while (0)

/* Moves to family f: closes the previous one (samples must be contiguous). */
static int enter(vstate_t *v, vfam_t *f) {
  int idx = (int)(f - v->fam);
  if (v->cur == idx) return 0;
  if (f->closed) VFAIL("family %s appears again after another family", f->name);
  if (v->cur >= 0) v->fam[v->cur].closed = 1;
  v->cur = idx;
  return 0;
}

static int finish_hist(vstate_t *v, double count) {
  if (!v->saw_inf) VFAIL("histogram %s has no le=\"+Inf\" bucket", v->hkey);
  if (v->inf_count != count) VFAIL("histogram %s: +Inf bucket %g != _count %g", v->hkey, v->inf_count, count);
  return 0;
}

static int validate_line(vstate_t *v, char *line) {
  if (!*line) VFAIL("empty line");
  if (line[0] == '#') {
    char kw[8], name[160];
    int off = 0;
    if (sscanf(line, "# %7s %159s %n", kw, name, &off) >= 2 && (!strcmp(kw, "HELP") || !strcmp(kw, "TYPE"))) {
      for (int i = 0; name[i]; i++)
        if (!name_char(name[i], i == 0)) VFAIL("bad metric name in %s", line);
      if (strncmp(name, "ampd_", 5)) VFAIL("name without ampd_ prefix: %s", name);
      vfam_t *f = get_fam(v, name);
      if (!f) VFAIL("too many families");
      if (enter(v, f)) return -1;
      if (f->samples) VFAIL("%s after samples of %s", kw, name);
      if (!strcmp(kw, "HELP")) {
        if (f->help++) VFAIL("second HELP for %s", name);
        for (const char *p = line + off; *p; p++)
          if (*p == '\\') {
            if (p[1] != '\\' && p[1] != 'n') VFAIL("bad escape in HELP of %s", name);
            p++;
          }
      } else {
        if (f->typed++) VFAIL("second TYPE for %s", name);
        const char *t = line + off;
        if (strcmp(t, "counter") && strcmp(t, "gauge") && strcmp(t, "histogram") && strcmp(t, "summary") &&
            strcmp(t, "untyped"))
          VFAIL("unknown type '%s'", t);
        snprintf(f->type, sizeof f->type, "%s", t);
        if (!strcmp(t, "counter") && (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
          VFAIL("counter %s does not end in _total", name);
      }
    }
    return 0;   /* any other comment */
  }
  /* sample: name [{labels}] value [timestamp] */
  char name[160];
  size_t i = 0;
  while (line[i] && name_char(line[i], i == 0) && i < sizeof name - 1) { name[i] = line[i]; i++; }
  name[i] = 0;
  if (!i) VFAIL("sample without a name: %s", line);
  char labels[512] = "", le[64] = "";
  size_t ln = 0;
  if (line[i] == '{') {
    i++;
    while (line[i] != '}') {
      char lname[64];
      size_t k = 0;
      while (line[i] && label_char(line[i], k == 0) && k < sizeof lname - 1) lname[k++] = line[i++];
      lname[k] = 0;
      if (!k) VFAIL("bad label name in %s", line);
      if (!strcmp(lname, "set_id") || !strcmp(lname, "payment_hash") || !strcmp(lname, "payment_addr") ||
          !strcmp(lname, "preimage"))
        VFAIL("label %s identifies a payment", lname);
      if (line[i++] != '=' || line[i++] != '"') VFAIL("bad label syntax in %s", line);
      char val[256];
      size_t m = 0;
      while (line[i] && line[i] != '"') {
        if (line[i] == '\\') {
          if (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n') VFAIL("bad escape in %s", line);
          if (m < sizeof val - 1) val[m++] = line[i];
          i++;
        }
        if (m < sizeof val - 1) val[m++] = line[i];
        i++;
      }
      val[m] = 0;
      if (line[i++] != '"') VFAIL("unterminated label value in %s", line);
      if (!strcmp(lname, "le")) snprintf(le, sizeof le, "%s", val);
      else ln += (size_t)snprintf(labels + ln, sizeof labels - ln, "%s=%s,", lname, val);
      if (line[i] == ',') i++;
      else if (line[i] != '}') VFAIL("bad label list in %s", line);
    }
    i++;
  }
  if (line[i++] != ' ') VFAIL("no space before the value: %s", line);
  char valtxt[64], ts[64];
  int nf = sscanf(line + i, "%63s %63s", valtxt, ts);
  double val;
  if (nf < 1 || parse_value(valtxt, &val)) VFAIL("bad value in %s", line);
  /* the family: exact, or a histogram's _bucket/_sum/_count */
  vfam_t *f = find_fam(v, name);
  const char *suffix = "";
  if (!f) {
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3 && !f; k++) {
      size_t n = strlen(name), sl = strlen(sfx[k]);
      if (n > sl && !strcmp(name + n - sl, sfx[k])) {
        char base[160];
        memcpy(base, name, n - sl);
        base[n - sl] = 0;
        f = find_fam(v, base);
        if (f && strcmp(f->type, "histogram")) f = NULL;
        if (f) suffix = sfx[k];
      }
    }
  }
  if (!f || !f->help || !f->typed) VFAIL("sample %s without HELP and TYPE before it", name);
  if (enter(v, f)) return -1;
  f->samples++;
  char key[256];
  snprintf(key, sizeof key, "%s{%s%s%s}", name, labels, *le ? "le=" : "", le);
  for (int k = 0; k < v->nser; k++)
    if (!strcmp(v->series[k], key)) VFAIL("duplicate series %s", key);
  if (v->nser < MAXSER) snprintf(v->series[v->nser++], sizeof v->series[0], "%s", key);
  if (!strcmp(f->type, "counter") && (val < 0 || isnan(val))) VFAIL("negative counter %s", key);
  if (!strcmp(f->type, "histogram")) {
    char hk[256];
    snprintf(hk, sizeof hk, "%s{%s}", f->name, labels);
    if (!strcmp(suffix, "_bucket")) {
      double lev;
      if (!*le || parse_value(le, &lev)) VFAIL("bucket without a valid le: %s", line);
      if (strcmp(hk, v->hkey)) {   /* a new histogram series */
        snprintf(v->hkey, sizeof v->hkey, "%s", hk);
        v->last_le = -INFINITY;
        v->last_count = 0;
        v->saw_inf = 0;
      }
      if (v->saw_inf) VFAIL("bucket after le=\"+Inf\" in %s", hk);
      if (!(lev > v->last_le)) VFAIL("le not increasing in %s", hk);
      if (val < v->last_count) VFAIL("bucket counts decrease in %s", hk);
      v->last_le = lev;
      v->last_count = val;
      if (isinf(lev)) { v->saw_inf = 1; v->inf_count = val; }
    } else if (!strcmp(suffix, "_count")) {
      if (strcmp(hk, v->hkey)) VFAIL("_count without buckets: %s", hk);
      if (finish_hist(v, val)) return -1;
    } else if (!strcmp(suffix, "_sum")) {
      if (strcmp(hk, v->hkey) || !v->saw_inf) VFAIL("_sum before the buckets end: %s", hk);
    } else {
      VFAIL("histogram %s has a plain sample", f->name);
    }
  }
  return 0;
}

/* Returns 0 if text is a valid exposition, else -1 with the reason in why. */
static int validate(const char *text, char *why, size_t cap) {
  static vstate_t v;
  memset(&v, 0, sizeof v);
  v.cur = -1;
  size_t n = strlen(text);
  if (!n || text[n - 1] != '\n') { snprintf(why, cap, "does not end in a newline"); return -1; }
  char *copy = strdup(text);
  int rc = 0;
  for (char *line = copy, *nl; *line; line = nl + 1) {
    nl = strchr(line, '\n');
    *nl = 0;
    if (validate_line(&v, line)) { rc = -1; break; }
  }
  for (int i = 0; rc == 0 && i < v.nfam; i++)
    if (!v.fam[i].samples) { snprintf(v.err, sizeof v.err, "family %s has no samples", v.fam[i].name); rc = -1; }
  free(copy);
  if (rc) snprintf(why, cap, "%s", v.err);
  return rc;
}

#endif /* AMP_PROMCHECK_H */
