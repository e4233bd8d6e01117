/* amp_hmac.c: HMAC-SHA256 (RFC 2104). */
#include "amp_hmac.h"

#include <string.h>

void amp_hmac_init(amp_hmac_t *ctx, const void *key, size_t key_len) {
  uint8_t k0[64], pad[64];
  memset(k0, 0, sizeof k0);
  if (key_len > sizeof k0) {
    amp_sha256(k0, key, key_len);
  } else if (key_len) {
    memcpy(k0, key, key_len);
  }
  for (int i = 0; i < 64; i++) pad[i] = k0[i] ^ 0x36;
  amp_sha256_init(&ctx->inner);
  amp_sha256_update(&ctx->inner, pad, sizeof pad);
  for (int i = 0; i < 64; i++) pad[i] = k0[i] ^ 0x5c;
  amp_sha256_init(&ctx->outer);
  amp_sha256_update(&ctx->outer, pad, sizeof pad);
  amp_wipe(k0, sizeof k0);
  amp_wipe(pad, sizeof pad);
}

void amp_hmac_update(amp_hmac_t *ctx, const void *data, size_t len) {
  amp_sha256_update(&ctx->inner, data, len);
}

void amp_hmac_update2(amp_hmac_t *a, const void *da, size_t la, amp_hmac_t *b, const void *db,
                      size_t lb) {
  amp_sha256_update2(&a->inner, da, la, &b->inner, db, lb);
}

void amp_hmac_update_n(amp_hmac_t *const *ctx, const void *const *data, const size_t *len,
                       size_t n) {
  amp_sha256_t *in[32];
  for (size_t base = 0; base < n; base += 32) {
    size_t k = n - base < 32 ? n - base : 32;
    for (size_t i = 0; i < k; i++) in[i] = &ctx[base + i]->inner;
    amp_sha256_update_n(in, data + base, len + base, k);
  }
}

void amp_hmac_init_n(amp_hmac_t *const *ctx, const uint8_t *const *key, size_t key_len,
                     size_t n) {
  amp_sha256_t *c[64];
  uint8_t pad[64][64];
  const void *pp[64];
  size_t pl[64];
  for (size_t base = 0; base < n; base += 32) {
    size_t k = n - base < 32 ? n - base : 32;
    for (size_t j = 0; j < k; j++) {
      amp_hmac_t *h = ctx[base + j];
      uint8_t *in = pad[2 * j], *out = pad[2 * j + 1];
      memset(in, 0, 64);
      if (key_len) memcpy(in, key[base + j], key_len);
      for (int i = 0; i < 64; i++) {
        out[i] = in[i] ^ 0x5c;
        in[i] ^= 0x36;
      }
      amp_sha256_init(&h->inner);
      amp_sha256_init(&h->outer);
      c[2 * j] = &h->inner;
      c[2 * j + 1] = &h->outer;
      pp[2 * j] = in;
      pp[2 * j + 1] = out;
      pl[2 * j] = pl[2 * j + 1] = 64;
    }
    amp_sha256_update_n(c, pp, pl, 2 * k);
    amp_wipe(pad, 2 * k * sizeof pad[0]);
  }
}

void amp_hmac_final_n(amp_hmac_t *const *ctx, uint8_t (*out)[AMP_SHA256_LEN], size_t n) {
  amp_sha256_t *c[32];
  uint8_t ih[32][AMP_SHA256_LEN];
  for (size_t base = 0; base < n; base += 32) {
    size_t k = n - base < 32 ? n - base : 32;
    for (size_t j = 0; j < k; j++) c[j] = &ctx[base + j]->inner;
    amp_sha256_final_n(c, ih, k); /* wipes the inners */
    for (size_t j = 0; j < k; j++) {
      c[j] = &ctx[base + j]->outer;
      amp_sha256_update(c[j], ih[j], AMP_SHA256_LEN);
    }
    amp_sha256_final_n(c, out + base, k); /* wipes the outers */
    amp_wipe(ih, k * sizeof ih[0]);
  }
}

void amp_hmac_final(amp_hmac_t *ctx, uint8_t out[AMP_SHA256_LEN]) {
  uint8_t ih[AMP_SHA256_LEN];
  amp_sha256_final(&ctx->inner, ih);            /* wipes inner */
  amp_sha256_update(&ctx->outer, ih, sizeof ih);
  amp_sha256_final(&ctx->outer, out);           /* wipes outer */
  amp_wipe(ih, sizeof ih);
}

void amp_hmac_sha256(uint8_t out[AMP_SHA256_LEN], const void *key, size_t key_len,
                     const void *msg, size_t msg_len) {
  amp_hmac_t ctx;
  amp_hmac_init(&ctx, key, key_len);
  amp_hmac_update(&ctx, msg, msg_len);
  amp_hmac_final(&ctx, out);
}
