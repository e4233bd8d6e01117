/* ampd_stub.c: a STAND-IN for engine/ and store/ while they are not built,
 * so the dataplane can be brought up and tested over vdevs on its own.
 * Linked only when meson finds no engine or store library (see
 * dataplane/meson.build), and the daemon then says so at start.
 *
 * It answers every update_add_htlc with update_fail_malformed_htlc
 * (invalid_onion_hmac, sha256_of_onion zero) at the next poll, echoes the
 * channel_id and htlc id, and counts as the engine would. Nothing is stored.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp_engine.h"
#include "amp_msg.h"

#define STUB_Q 8192

struct amp_store {
  int unused;
};

struct amp_worker {
  amp_engine_t *e;
  uint64_t gw[STUB_Q], scid[STUB_Q], cookie[STUB_Q];
  uint8_t msg[STUB_Q][AMP_MSG_FAIL_MALFORMED_LEN];
  unsigned head, tail;
  amp_engine_stats_t st;
};

struct amp_engine {
  _Atomic uint32_t height;
  unsigned n;
  struct amp_worker *w;
};

int amp_store_open(amp_store_t **st, const amp_store_cfg_t *cfg) {
  (void)cfg;
  fprintf(stderr, "ampd: warn: built WITHOUT engine/ and store/: a stub answers every HTLC"
          " with update_fail_malformed_htlc and stores nothing\n");
  *st = calloc(1, sizeof **st);
  return *st ? AMP_OK : AMP_ERR_NOMEM;
}

void amp_store_close(amp_store_t *st) { free(st); }

void amp_store_stats(const amp_store_t *st, amp_store_stats_t *out) {
  (void)st;
  memset(out, 0, sizeof *out);
}

int amp_engine_new(amp_engine_t **e, const amp_engine_cfg_t *cfg) {
  amp_engine_t *x = calloc(1, sizeof *x);
  if (!x) return AMP_ERR_NOMEM;
  x->n = cfg->workers;
  x->w = calloc(cfg->workers, sizeof *x->w);
  if (!x->w) {
    free(x);
    return AMP_ERR_NOMEM;
  }
  for (unsigned i = 0; i < x->n; i++) x->w[i].e = x;
  *e = x;
  return AMP_OK;
}

void amp_engine_delete(amp_engine_t *e) {
  if (!e) return;
  free(e->w);
  free(e);
}

amp_worker_t *amp_engine_worker(amp_engine_t *e, unsigned idx) { return &e->w[idx]; }
void amp_worker_attach(amp_worker_t *w) { (void)w; }
void amp_worker_detach(amp_worker_t *w) { (void)w; }

void amp_worker_process(amp_worker_t *w, const amp_engine_in_t *in, size_t n,
                        const amp_engine_sink_t *sink) {
  (void)sink;
  for (size_t i = 0; i < n; i++) {
    w->st.msgs_in++;
    if (in[i].len < 2 || amp_be16(in[i].msg) != AMP_MSG_UPDATE_ADD_HTLC) {
      w->st.unknown_msg++;
      continue;
    }
    if (in[i].len < AMP_MSG_ADD_LEN) {
      w->st.bad_msg++;
      continue;
    }
    w->st.htlcs_in++;
    if (w->tail - w->head == STUB_Q) {
      w->st.overload_dropped++;
      continue;
    }
    unsigned k = w->tail++ % STUB_Q;
    uint8_t *m = w->msg[k];
    memset(m, 0, AMP_MSG_FAIL_MALFORMED_LEN);
    amp_put_be16(m, AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC);
    memcpy(m + 2, in[i].msg + 2, 32 + 8);   /* channel_id, id */
    amp_put_be16(m + 2 + 32 + 8 + 32, 0xC005);
    w->gw[k] = in[i].gateway_id;
    w->scid[k] = in[i].scid;
    w->cookie[k] = in[i].cookie;
  }
}

size_t amp_worker_poll(amp_worker_t *w, uint64_t now_ns, const amp_engine_sink_t *sink) {
  (void)now_ns;
  size_t n = 0;
  while (w->head != w->tail) {
    unsigned k = w->head++ % STUB_Q;
    sink->emit(sink->ctx, w->gw[k], w->scid[k], w->cookie[k], w->msg[k], AMP_MSG_FAIL_MALFORMED_LEN);
    w->st.malformed_onion++;
    w->st.answers_malformed++;
    n++;
  }
  return n;
}

int amp_worker_idle(const amp_worker_t *w) { return w->head == w->tail; }

void amp_engine_set_height(amp_engine_t *e, uint32_t height) { atomic_store(&e->height, height); }
uint32_t amp_engine_height(const amp_engine_t *e) {
  return atomic_load(&((amp_engine_t *)e)->height);
}

void amp_engine_stats(const amp_engine_t *e, amp_engine_stats_t *out) {
  memset(out, 0, sizeof *out);
  uint64_t *o = (uint64_t *)out;
  for (unsigned i = 0; i < e->n; i++) {
    const uint64_t *s = (const uint64_t *)&e->w[i].st;
    for (size_t k = 0; k < sizeof *out / sizeof(uint64_t); k++) o[k] += s[k];
  }
  out->height = amp_engine_height(e);
}

const char *amp_engine_counter_name(size_t i, const char **desc) {
  static const char *const names[] = {
#define STUB_NAME_(n, d) #n,
    AMP_ENGINE_COUNTERS(STUB_NAME_)
#undef STUB_NAME_
  };
  static const char *const descs[] = {
#define STUB_DESC_(n, d) d,
    AMP_ENGINE_COUNTERS(STUB_DESC_)
#undef STUB_DESC_
  };
  if (i >= sizeof names / sizeof names[0]) return NULL;
  if (desc) *desc = descs[i];
  return names[i];
}
