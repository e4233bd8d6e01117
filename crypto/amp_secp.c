/* amp_secp.c: the secp256k1 glue over libsecp256k1 (>= 0.2.0).
 *
 * One context for the process, made by pthread_once and randomized from
 * amp_random before any other thread can see it; afterwards it is only read.
 * libsecp256k1's context is safe to share between threads for every call
 * that takes it const, which is every call made here after init.
 */
#include "amp_secp.h"
#include "amp_sha256.h"

#include <pthread.h>
#include <string.h>

#include <secp256k1.h>
#include <secp256k1_ecdh.h>

_Static_assert(sizeof(secp256k1_pubkey) == sizeof(amp_pubkey_t),
               "amp_pubkey_t must hold a secp256k1_pubkey");

static secp256k1_context *amp_secp_ctx_;
static int amp_secp_init_rc_ = AMP_ERR_STATE;
static pthread_once_t amp_secp_once_ = PTHREAD_ONCE_INIT;

static void amp_secp_init_once_(void) {
  uint8_t seed[32];
  secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  if (!ctx) {
    amp_secp_init_rc_ = AMP_ERR_NOMEM;
    return;
  }
  if (amp_random(seed, sizeof seed) != AMP_OK) {
    secp256k1_context_destroy(ctx);
    amp_secp_init_rc_ = AMP_ERR_RANDOM;
    return;
  }
  /* Randomization blinds the base point multiplications (pubkey_create, the
   * sender's keys); it cannot fail on a context made by context_create. */
  int ok = secp256k1_context_randomize(ctx, seed);
  amp_wipe(seed, sizeof seed);
  if (!ok) {
    secp256k1_context_destroy(ctx);
    amp_secp_init_rc_ = AMP_ERR_RANDOM;
    return;
  }
  amp_secp_ctx_ = ctx;
  amp_secp_init_rc_ = AMP_OK;
}

int amp_secp_init(void) {
  if (pthread_once(&amp_secp_once_, amp_secp_init_once_) != 0) return AMP_ERR_STATE;
  return amp_secp_init_rc_;
}

/* The opaque key types are byte arrays of the same size; copy rather than cast
 * so nothing depends on how the compiler treats aliasing. */
static inline void amp_pk_load_(secp256k1_pubkey *dst, const amp_pubkey_t *src) {
  memcpy(dst->data, src->data, sizeof dst->data);
}
static inline void amp_pk_store_(amp_pubkey_t *dst, const secp256k1_pubkey *src) {
  memcpy(dst->data, src->data, sizeof dst->data);
}

int amp_secp_pubkey_parse(amp_pubkey_t *pk, const uint8_t in[AMP_PUBKEY_LEN]) {
  secp256k1_pubkey p;
  /* A 33-byte input is accepted only with prefix 0x02 or 0x03 and an x that
   * is on the curve: libsecp rejects 0x04/0x06/0x07 at this length. */
  if (!secp256k1_ec_pubkey_parse(amp_secp_ctx_, &p, in, AMP_PUBKEY_LEN)) {
    memset(pk, 0, sizeof *pk);
    return AMP_ERR_BAD_KEY;
  }
  amp_pk_store_(pk, &p);
  return AMP_OK;
}

void amp_secp_pubkey_serialize(uint8_t out[AMP_PUBKEY_LEN], const amp_pubkey_t *pk) {
  secp256k1_pubkey p;
  size_t len = AMP_PUBKEY_LEN;
  amp_pk_load_(&p, pk);
  /* Cannot fail for a key made by this module; out has exactly 33 bytes. */
  (void)secp256k1_ec_pubkey_serialize(amp_secp_ctx_, out, &len, &p, SECP256K1_EC_COMPRESSED);
}

int amp_secp_pubkey_create(amp_pubkey_t *pk, const uint8_t seckey[32]) {
  secp256k1_pubkey p;
  if (!secp256k1_ec_pubkey_create(amp_secp_ctx_, &p, seckey)) {
    memset(pk, 0, sizeof *pk);
    return AMP_ERR_BAD_KEY;
  }
  amp_pk_store_(pk, &p);
  return AMP_OK;
}

int amp_secp_seckey_verify(const uint8_t seckey[32]) {
  return secp256k1_ec_seckey_verify(amp_secp_ctx_, seckey) ? AMP_OK : AMP_ERR_BAD_KEY;
}

/* libsecp's hash callback, given the shared point: keeps it compressed in
 * data (the caller hashes it) instead of libsecp's own SHA-256 (portable C,
 * ~150-300 ns more than a SHA-NI one, measured). Writes nothing to out. */
static int ecdh_keep_point_(unsigned char *out, const unsigned char *x32,
                            const unsigned char *y32, void *data) {
  (void)out;
  uint8_t *pt = data;
  pt[0] = (uint8_t)(0x02 | (y32[31] & 1));
  memcpy(pt + 1, x32, 32);
  return 1;
}

int amp_secp_ecdh_point(uint8_t point[33], const amp_pubkey_t *pk, const uint8_t seckey[32]) {
  secp256k1_pubkey p;
  uint8_t unused[32];
  amp_pk_load_(&p, pk);
  /* The multiplication is constant-time in seckey; libsecp wipes its own
   * temporaries (the point and the scalar). */
  int ok = secp256k1_ecdh(amp_secp_ctx_, unused, &p, seckey, ecdh_keep_point_, point);
  if (!ok) amp_wipe(point, 33);
  return ok ? AMP_OK : AMP_ERR_BAD_KEY;
}

int amp_secp_ecdh(uint8_t secret[32], const amp_pubkey_t *pk, const uint8_t seckey[32]) {
  uint8_t pt[33];
  int rc = amp_secp_ecdh_point(pt, pk, seckey);
  if (rc == AMP_OK) amp_sha256(secret, pt, sizeof pt); /* SHA256(0x02|parity(y) || x) */
  else amp_wipe(secret, 32);
  amp_wipe(pt, sizeof pt);
  return rc;
}

int amp_secp_pubkey_tweak_mul(amp_pubkey_t *pk, const uint8_t tweak[32]) {
  secp256k1_pubkey p;
  amp_pk_load_(&p, pk);
  if (!secp256k1_ec_pubkey_tweak_mul(amp_secp_ctx_, &p, tweak)) return AMP_ERR_BAD_KEY;
  amp_pk_store_(pk, &p);
  return AMP_OK;
}

int amp_secp_seckey_tweak_mul(uint8_t seckey[32], const uint8_t tweak[32]) {
  uint8_t k[32];
  memcpy(k, seckey, 32);
  int ok = secp256k1_ec_seckey_tweak_mul(amp_secp_ctx_, k, tweak);
  if (ok) memcpy(seckey, k, 32);
  amp_wipe(k, sizeof k);
  return ok ? AMP_OK : AMP_ERR_BAD_KEY;
}
