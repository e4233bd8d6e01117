/* amp_sphinx.c: BOLT #4 onion routing: peel (one and burst), next onion,
 * sender-side build with filler, failure onions.
 *
 * The receive path is written once, as stages over a chunk of onions
 * (VPP style: each stage runs over every onion of the chunk before the next
 * one starts); amp_sphinx_peel is a chunk of one. Nothing allocates: the
 * per-chunk temporaries (parsed keys, rho keys, blinding inputs) live on the
 * stack, AMP_SPHINX_CHUNK_ at a time, and are wiped when the chunk is done.
 */
#include "amp_sphinx.h"

#include <pthread.h>
#include <string.h>

#include "amp_chacha20.h"
#include "amp_hmac.h"
#include "amp_sha256.h"
#include "amp_tlv.h"

#define AMP_SPHINX_CHUNK_ 32
#define AMP_SPHINX_MAX_HOPS_ 27
#define AMP_ONION_EPH_OFF_ 1
#define AMP_ONION_PAYLOADS_OFF_ (1 + AMP_PUBKEY_LEN)
#define AMP_ONION_HMAC_OFF_ (AMP_ONION_PAYLOADS_OFF_ + AMP_ONION_PAYLOADS_LEN)

static const uint8_t amp_zero_nonce_[12];

/* The key names are fixed HMAC keys: their inner and outer pad states are
 * computed once, so a derived key costs two SHA-256 compressions, not four
 * (~100 ns saved per key, two keys per peel). */
static const char *const amp_key_names_[] = {"rho", "mu", "um", "ammag", "pad"};
#define AMP_KEY_RHO_ 0u /* indexes into amp_key_names_ */
#define AMP_KEY_MU_ 1u
#define AMP_KEY_NAMES_ (sizeof amp_key_names_ / sizeof amp_key_names_[0])
static amp_hmac_t amp_key_ctx_[AMP_KEY_NAMES_];
static pthread_once_t amp_key_once_ = PTHREAD_ONCE_INIT;

static void amp_key_init_(void) {
  for (size_t i = 0; i < AMP_KEY_NAMES_; i++)
    amp_hmac_init(&amp_key_ctx_[i], amp_key_names_[i], strlen(amp_key_names_[i]));
}

void amp_sphinx_derive_key(uint8_t out[32], const char *name, const uint8_t ss[32]) {
  pthread_once(&amp_key_once_, amp_key_init_);
  for (size_t i = 0; i < AMP_KEY_NAMES_; i++) {
    if (strcmp(name, amp_key_names_[i]) == 0) {
      amp_hmac_t c = amp_key_ctx_[i];
      amp_hmac_update(&c, ss, 32);
      amp_hmac_final(&c, out); /* wipes c */
      return;
    }
  }
  amp_hmac_sha256(out, name, strlen(name), ss, 32);
}

/* amp_sphinx_derive_key for n shared secrets under one of the fixed names,
 * the finals batched (amp_hmac_final_n). */
static void amp_derive_key_n_(uint8_t (*out)[32], unsigned name, const uint8_t *const *ss,
                              size_t n) {
  amp_hmac_t c[AMP_SPHINX_CHUNK_], *cp[AMP_SPHINX_CHUNK_];
  pthread_once(&amp_key_once_, amp_key_init_);
  for (size_t i = 0; i < n; i++) {
    c[i] = amp_key_ctx_[name];
    amp_hmac_update(&c[i], ss[i], 32); /* buffered: no compression */
    cp[i] = &c[i];
  }
  amp_hmac_final_n(cp, out, n); /* wipes c */
}

/* ---- receive path: stages ------------------------------------------------ */

/* Marks h failed. sha256_of_onion is set for every failure: it is what
 * update_fail_malformed_htlc carries, and the cost (21 compressions) is paid
 * on the failure path only. The shared secret is kept only for a payload
 * failure (the caller answers with a failure onion under that secret). */
static void amp_peel_fail_(amp_sphinx_hop_t *h, const uint8_t *onion, int err, uint16_t code) {
  h->err = err;
  h->failure_code = code;
  amp_sha256(h->sha256_of_onion, onion, AMP_ONION_LEN);
  if (err != AMP_ERR_PAYLOAD) amp_wipe(h->shared_secret, sizeof h->shared_secret);
  h->payload = NULL;
  h->payload_len = 0;
  h->is_final = 0;
}

static void amp_peel_reset_(amp_sphinx_hop_t *h) {
  h->err = AMP_OK;
  h->failure_code = 0;
  h->is_final = 0;
  h->shift = 0;
  h->dec_len = 0;
  memset(h->sha256_of_onion, 0, sizeof h->sha256_of_onion);
  memset(h->shared_secret, 0, sizeof h->shared_secret);
  memset(h->next_hmac, 0, sizeof h->next_hmac);
  memset(h->next_ephemeral, 0, sizeof h->next_ephemeral);
  h->payload = NULL;
  h->payload_len = 0;
}

/* Stage 1: version byte and ephemeral key. */
static void amp_peel_parse_(amp_sphinx_hop_t *h, amp_pubkey_t *eph, const uint8_t *onion) {
  amp_peel_reset_(h);
  if (onion[0] != 0) {
    amp_peel_fail_(h, onion, AMP_ERR_ONION_VERSION, AMP_FAIL_INVALID_ONION_VERSION);
    return;
  }
  if (amp_secp_pubkey_parse(eph, onion + AMP_ONION_EPH_OFF_) != AMP_OK)
    amp_peel_fail_(h, onion, AMP_ERR_ONION_KEY, AMP_FAIL_INVALID_ONION_KEY);
}

/* Stage 2: ss = SHA256(compressed(node_key * eph)): the chunk's points
 * first, then their hashes in one batch (amp_sha256_batch: sixteen lanes on
 * AVX-512 from ten points, else SHA-NI pairs at ~34 ns a point; libsecp's
 * portable SHA-256 inside secp256k1_ecdh cost 156-232 ns more per ECDH).
 * Fails only for a node key that is not a valid secret key (a configuration
 * error: the caller checks it once at start with amp_secp_seckey_verify). */
static void amp_peel_ecdh_n_(amp_sphinx_hop_t *out, size_t n, const amp_pubkey_t *eph,
                             const uint8_t node_key[32], const uint8_t *const *onion) {
  uint8_t pt[AMP_SPHINX_CHUNK_][33], ss[AMP_SPHINX_CHUNK_][32];
  const uint8_t *pp[AMP_SPHINX_CHUNK_];
  size_t pl[AMP_SPHINX_CHUNK_], pi[AMP_SPHINX_CHUNK_], np = 0;
  for (size_t i = 0; i < n; i++) {
    if (out[i].err != AMP_OK) continue;
    if (amp_secp_ecdh_point(pt[np], &eph[i], node_key) != AMP_OK) {
      amp_peel_fail_(&out[i], onion[i], AMP_ERR_BAD_KEY, 0);
      continue;
    }
    pp[np] = pt[np];
    pl[np] = 33;
    pi[np++] = i;
  }
  amp_sha256_batch(ss, pp, pl, np);
  for (size_t j = 0; j < np; j++) memcpy(out[pi[j]].shared_secret, ss[j], 32);
  amp_wipe(pt, np * sizeof pt[0]);
  amp_wipe(ss, np * sizeof ss[0]);
}

/* Stage 3: mu key, HMAC over hop_payloads || assoc, constant-time compare.
 * The chunk's onions together, every SHA-256 step batched: the mu keys'
 * finals, the MACs' pads, their 20 whole blocks of hop_payloads and their
 * finals go through amp_sha256_update_n (sixteen streams at a time on
 * AVX-512 from ten onions, else in pairs on SHA-NI): 8 one-block steps per
 * onion that were single SHA-NI compressions (~60 ns each in place). */
static void amp_peel_hmacs_(amp_sphinx_hop_t *out, size_t n, const uint8_t *const *assoc,
                            size_t assoc_len, const uint8_t *const *onion) {
  amp_hmac_t mc[AMP_SPHINX_CHUNK_];
  amp_hmac_t *mp[AMP_SPHINX_CHUNK_];
  const void *md[AMP_SPHINX_CHUNK_];
  const uint8_t *ss[AMP_SPHINX_CHUNK_], *mk[AMP_SPHINX_CHUNK_];
  uint8_t mu[AMP_SPHINX_CHUNK_][32], mac[AMP_SPHINX_CHUNK_][32];
  size_t ml[AMP_SPHINX_CHUNK_], mi[AMP_SPHINX_CHUNK_], nm = 0;
  for (size_t i = 0; i < n; i++) {
    if (out[i].err != AMP_OK) continue;
    ss[nm] = out[i].shared_secret;
    mk[nm] = mu[nm];
    mp[nm] = &mc[nm];
    md[nm] = onion[i] + AMP_ONION_PAYLOADS_OFF_;
    ml[nm] = AMP_ONION_PAYLOADS_LEN;
    mi[nm++] = i;
  }
  amp_derive_key_n_(mu, AMP_KEY_MU_, ss, nm);
  amp_hmac_init_n(mp, mk, 32, nm);
  amp_wipe(mu, nm * sizeof mu[0]);
  amp_hmac_update_n(mp, md, ml, nm);
  for (size_t j = 0; j < nm; j++) amp_hmac_update(&mc[j], assoc[mi[j]], assoc_len);
  amp_hmac_final_n(mp, mac, nm); /* wipes mc */
  for (size_t j = 0; j < nm; j++) {
    const uint8_t *on = onion[mi[j]];
    if (!amp_ct_eq(mac[j], on + AMP_ONION_HMAC_OFF_, AMP_ONION_HMAC_LEN))
      amp_peel_fail_(&out[mi[j]], on, AMP_ERR_ONION_HMAC, AMP_FAIL_INVALID_ONION_HMAC);
  }
  amp_wipe(mac, nm * sizeof mac[0]);
}

/* Stage 4: rho key; decrypt the first 1300 bytes of hop_payloads || zeros.
 * The second half (the next hop's hop_payloads) is made in stage 6, for
 * forwards only: a final hop never needs it. */
/* Decrypts dec[dec_len .. upto) of hop_payloads with the rho stream; both
 * ends on 64-byte block boundaries (or the end of the 1300 bytes). */
static void amp_peel_decrypt_to_(amp_sphinx_hop_t *h, const uint8_t rho[32],
                                 const uint8_t *onion, size_t upto) {
  size_t from = h->dec_len;
  if (upto <= from) return;
  amp_chacha20_xor(h->dec + from, onion + AMP_ONION_PAYLOADS_OFF_ + from, upto - from, rho,
                   amp_zero_nonce_, (uint32_t)(from / 64));
  h->dec_len = (uint16_t)upto;
}
/* A first stretch, enough for the payload's BigSize length: with AVX2 one
 * eight-block pass (512 bytes for about two blocks' time: a final hop's AMP
 * payload, ~150-250 bytes with its HMAC, needs nothing more; -30 to -110 ns
 * per onion against a block then two more, measured in bench_crypto with
 * both in one process), else one block. The rest is decrypted as far as the
 * hop needs it (amp_peel_payload_, amp_peel_tail_): a final hop reads a few
 * hundred bytes of stream instead of 1300 (~1 us saved). */
static void amp_peel_decrypt_(amp_sphinx_hop_t *h, const uint8_t rho[32], const uint8_t *onion) {
  h->dec_len = 0;
  amp_peel_decrypt_to_(h, rho, onion, amp_chacha20_wide_len());
}
static void amp_peel_payload_(amp_sphinx_hop_t *h, const uint8_t rho[32], const uint8_t *onion) {
  uint64_t len;
  int hdr = amp_bigsize_read(&len, h->dec, 9);
  if (hdr < 0 || len < 2 ||
      len > (uint64_t)(AMP_ONION_PAYLOADS_LEN - AMP_ONION_HMAC_LEN - (size_t)hdr)) {
    amp_peel_fail_(h, onion, AMP_ERR_PAYLOAD, 0);
    return;
  }
  size_t need = (size_t)hdr + (size_t)len + AMP_ONION_HMAC_LEN;
  size_t upto = (need + 63) & ~(size_t)63;
  amp_peel_decrypt_to_(h, rho, onion, upto < AMP_ONION_PAYLOADS_LEN ? upto : AMP_ONION_PAYLOADS_LEN);
  h->payload = h->dec + hdr;
  h->payload_len = (size_t)len;
  h->shift = (uint16_t)need;
  memcpy(h->next_hmac, h->dec + hdr + len, AMP_ONION_HMAC_LEN);
  h->is_final = (uint8_t)amp_ct_is_zero(h->next_hmac, AMP_ONION_HMAC_LEN);
}
/* Forwards only: the rest of hop_payloads, then the 1300 bytes of stream
 * past its end (what the next hop's filler comes from). */
static void amp_peel_tail_(amp_sphinx_hop_t *h, const uint8_t rho[32], const uint8_t *onion) {
  amp_peel_decrypt_to_(h, rho, onion, AMP_ONION_PAYLOADS_LEN);
  uint8_t blk[64];
  const size_t blk_off = AMP_ONION_PAYLOADS_LEN % 64;                 /* 20 */
  const uint32_t blk_no = AMP_ONION_PAYLOADS_LEN / 64;                /* 20 */
  const size_t head = 64 - blk_off;                                   /* 44 */
  amp_chacha20_block(blk, rho, blk_no, amp_zero_nonce_);
  memcpy(h->dec + AMP_ONION_PAYLOADS_LEN, blk + blk_off, head);
  uint8_t *rest = h->dec + AMP_ONION_PAYLOADS_LEN + head;
  size_t rest_len = AMP_ONION_PAYLOADS_LEN - head;
  memset(rest, 0, rest_len);
  amp_chacha20_xor(rest, rest, rest_len, rho, amp_zero_nonce_, blk_no + 1);
  amp_wipe(blk, sizeof blk);
}
/* The blinding input of a forward: compressed ephemeral || ss (65 bytes). */
#define AMP_BLIND_MSG_LEN_ (AMP_PUBKEY_LEN + 32)

/* Peels a chunk; returns the ns of its parse and ECDH stages. */
static uint64_t amp_peel_chunk_(amp_sphinx_hop_t *out, size_t n, const uint8_t node_key[32],
                                const uint8_t *const *assoc, size_t assoc_len,
                                const uint8_t *const *onion) {
  amp_pubkey_t eph[AMP_SPHINX_CHUNK_];
  uint8_t rho[AMP_SPHINX_CHUNK_][32];
  uint8_t bmsg[AMP_SPHINX_CHUNK_][AMP_BLIND_MSG_LEN_];
  uint8_t blind[AMP_SPHINX_CHUNK_][32];
  const uint8_t *bptr[AMP_SPHINX_CHUNK_];
  size_t blen[AMP_SPHINX_CHUNK_];
  size_t fwd[AMP_SPHINX_CHUNK_];
  size_t nf = 0;

  uint64_t t0 = amp_mono_ns();
  for (size_t i = 0; i < n; i++) amp_peel_parse_(&out[i], &eph[i], onion[i]);
  amp_peel_ecdh_n_(out, n, eph, node_key, onion);
  uint64_t curve_ns = amp_mono_ns() - t0;
  amp_peel_hmacs_(out, n, assoc, assoc_len, onion);
  /* the rho keys of the onions that passed, their finals batched */
  uint8_t rk[AMP_SPHINX_CHUNK_][32];
  const uint8_t *ss[AMP_SPHINX_CHUNK_];
  size_t ri[AMP_SPHINX_CHUNK_], nr = 0;
  for (size_t i = 0; i < n; i++)
    if (out[i].err == AMP_OK) {
      ss[nr] = out[i].shared_secret;
      ri[nr++] = i;
    }
  amp_derive_key_n_(rk, AMP_KEY_RHO_, ss, nr);
  for (size_t j = 0; j < nr; j++) memcpy(rho[ri[j]], rk[j], 32);
  amp_wipe(rk, nr * sizeof rk[0]);
  for (size_t i = 0; i < n; i++)
    if (out[i].err == AMP_OK) amp_peel_decrypt_(&out[i], rho[i], onion[i]);
  for (size_t i = 0; i < n; i++)
    if (out[i].err == AMP_OK) amp_peel_payload_(&out[i], rho[i], onion[i]);

  /* Forwards: blinding factors SHA256(eph || ss) in one batch, then the
   * stream tails, then one tweak_mul each. */
  for (size_t i = 0; i < n; i++) {
    if (out[i].err != AMP_OK || out[i].is_final) continue;
    memcpy(bmsg[nf], onion[i] + AMP_ONION_EPH_OFF_, AMP_PUBKEY_LEN);
    memcpy(bmsg[nf] + AMP_PUBKEY_LEN, out[i].shared_secret, 32);
    bptr[nf] = bmsg[nf];
    blen[nf] = AMP_BLIND_MSG_LEN_;
    fwd[nf++] = i;
  }
  if (nf) amp_sha256_batch(blind, bptr, blen, nf);
  for (size_t j = 0; j < nf; j++) amp_peel_tail_(&out[fwd[j]], rho[fwd[j]], onion[fwd[j]]);
  for (size_t j = 0; j < nf; j++) {
    amp_sphinx_hop_t *h = &out[fwd[j]];
    /* A blinding factor >= n has probability ~2^-128: treat as a bad key. */
    if (amp_secp_pubkey_tweak_mul(&eph[fwd[j]], blind[j]) != AMP_OK) {
      amp_peel_fail_(h, onion[fwd[j]], AMP_ERR_ONION_KEY, AMP_FAIL_INVALID_ONION_KEY);
      continue;
    }
    amp_secp_pubkey_serialize(h->next_ephemeral, &eph[fwd[j]]);
  }
  amp_wipe(rho, n * sizeof rho[0]);
  amp_wipe(bmsg, nf * sizeof bmsg[0]);
  amp_wipe(blind, nf * sizeof blind[0]);
  return curve_ns;
}

int amp_sphinx_peel(amp_sphinx_hop_t *out, const uint8_t node_key[32], const uint8_t *assoc,
                    size_t assoc_len, const uint8_t onion[AMP_ONION_LEN]) {
  (void)amp_peel_chunk_(out, 1, node_key, &assoc, assoc_len, &onion);
  return out->err;
}

uint64_t amp_sphinx_peel_burst(amp_sphinx_hop_t *out, size_t n, const uint8_t node_key[32],
                               const uint8_t *const *assoc, const uint8_t *const *onion) {
  uint64_t curve_ns = 0;
  for (size_t base = 0; base < n; base += AMP_SPHINX_CHUNK_) {
    size_t k = n - base < AMP_SPHINX_CHUNK_ ? n - base : AMP_SPHINX_CHUNK_;
    curve_ns += amp_peel_chunk_(out + base, k, node_key, assoc + base, 32, onion + base);
  }
  return curve_ns;
}

void amp_sphinx_next_onion(uint8_t out[AMP_ONION_LEN], const amp_sphinx_hop_t *hop) {
  out[0] = 0;
  memcpy(out + AMP_ONION_EPH_OFF_, hop->next_ephemeral, AMP_PUBKEY_LEN);
  memcpy(out + AMP_ONION_PAYLOADS_OFF_, hop->dec + hop->shift, AMP_ONION_PAYLOADS_LEN);
  memcpy(out + AMP_ONION_HMAC_OFF_, hop->next_hmac, AMP_ONION_HMAC_LEN);
}

/* ---- send path ----------------------------------------------------------- */

int amp_sphinx_build(uint8_t onion[AMP_ONION_LEN], const uint8_t session_key[32],
                     const uint8_t (*pubkeys)[AMP_PUBKEY_LEN], const uint8_t *const *payloads,
                     const size_t *payload_lens, size_t n_hops, const uint8_t *assoc,
                     size_t assoc_len, uint8_t (*shared_secrets)[32]) {
  uint8_t ss[AMP_SPHINX_MAX_HOPS_][32];
  size_t shift[AMP_SPHINX_MAX_HOPS_];
  uint8_t eph0[AMP_PUBKEY_LEN];
  uint8_t ek[32], epk_ser[AMP_PUBKEY_LEN], bmsg[AMP_BLIND_MSG_LEN_], blind[32];
  uint8_t key[32], mac[32];
  uint8_t mix[AMP_ONION_PAYLOADS_LEN];
  uint8_t filler[AMP_ONION_PAYLOADS_LEN];
  uint8_t stream[2 * AMP_ONION_PAYLOADS_LEN];
  amp_pubkey_t epk, hop_pk;
  amp_hmac_t c;
  size_t total = 0, filler_len = 0;
  int rc = AMP_OK;

  if (n_hops == 0 || n_hops > AMP_SPHINX_MAX_HOPS_) return AMP_ERR_RANGE;
  for (size_t i = 0; i < n_hops; i++) {
    if (payload_lens[i] < 2) return AMP_ERR_LENGTH;
    if (payload_lens[i] > AMP_ONION_PAYLOADS_LEN) return AMP_ERR_OVERFLOW;
    shift[i] = amp_bigsize_len(payload_lens[i]) + payload_lens[i] + AMP_ONION_HMAC_LEN;
    total += shift[i];
    if (total > AMP_ONION_PAYLOADS_LEN) return AMP_ERR_OVERFLOW;
  }

  /* Key schedule: ek_0 = session key; ss_i = ECDH(ek_i, P_i);
   * ek_{i+1} = ek_i * SHA256(epk_i || ss_i). */
  memcpy(ek, session_key, 32);
  for (size_t i = 0; i < n_hops && rc == AMP_OK; i++) {
    if ((rc = amp_secp_pubkey_create(&epk, ek)) != AMP_OK) break;
    if ((rc = amp_secp_pubkey_parse(&hop_pk, pubkeys[i])) != AMP_OK) break;
    if ((rc = amp_secp_ecdh(ss[i], &hop_pk, ek)) != AMP_OK) break;
    amp_secp_pubkey_serialize(epk_ser, &epk);
    if (i == 0) memcpy(eph0, epk_ser, AMP_PUBKEY_LEN);
    if (i + 1 == n_hops) break;
    memcpy(bmsg, epk_ser, AMP_PUBKEY_LEN);
    memcpy(bmsg + AMP_PUBKEY_LEN, ss[i], 32);
    amp_sha256(blind, bmsg, sizeof bmsg);
    rc = amp_secp_seckey_tweak_mul(ek, blind);
  }
  amp_wipe(ek, sizeof ek);
  amp_wipe(bmsg, sizeof bmsg);
  amp_wipe(blind, sizeof blind);
  if (rc != AMP_OK) {
    amp_wipe(ss, sizeof ss);
    return AMP_ERR_BAD_KEY;
  }

  /* Filler: what hops 0..n-2 append and encrypt, as the last hop sees it.
   * With L_i = shift_0 + ... + shift_{i-1}, after hop i the filler is
   * (filler || 0^shift_i) XOR rho_i stream[1300 - L_i .. 1300 + shift_i]. */
  memset(filler, 0, sizeof filler);
  for (size_t i = 0; i + 1 < n_hops; i++) {
    size_t end = AMP_ONION_PAYLOADS_LEN + shift[i];
    size_t start = AMP_ONION_PAYLOADS_LEN - filler_len;
    amp_sphinx_derive_key(key, "rho", ss[i]);
    amp_chacha20_stream(stream, end, key);
    filler_len += shift[i];
    for (size_t k = 0; k < filler_len; k++) filler[k] ^= stream[start + k];
  }

  /* Initial hop_payloads: the pad stream of the session key. */
  amp_sphinx_derive_key(key, "pad", session_key);
  amp_chacha20_stream(mix, sizeof mix, key);

  memset(mac, 0, sizeof mac); /* the final hop's next hmac is all zero */
  for (size_t i = n_hops; i-- > 0;) {
    memmove(mix + shift[i], mix, AMP_ONION_PAYLOADS_LEN - shift[i]);
    size_t off = amp_bigsize_write(mix, payload_lens[i]);
    memcpy(mix + off, payloads[i], payload_lens[i]);
    memcpy(mix + off + payload_lens[i], mac, AMP_ONION_HMAC_LEN);
    amp_sphinx_derive_key(key, "rho", ss[i]);
    amp_chacha20_xor(mix, mix, sizeof mix, key, amp_zero_nonce_, 0);
    if (i + 1 == n_hops && filler_len)
      memcpy(mix + AMP_ONION_PAYLOADS_LEN - filler_len, filler, filler_len);
    amp_sphinx_derive_key(key, "mu", ss[i]);
    amp_hmac_init(&c, key, sizeof key);
    amp_hmac_update(&c, mix, sizeof mix);
    amp_hmac_update(&c, assoc, assoc_len);
    amp_hmac_final(&c, mac);
  }

  onion[0] = 0;
  memcpy(onion + AMP_ONION_EPH_OFF_, eph0, AMP_PUBKEY_LEN);
  memcpy(onion + AMP_ONION_PAYLOADS_OFF_, mix, sizeof mix);
  memcpy(onion + AMP_ONION_HMAC_OFF_, mac, sizeof mac);
  if (shared_secrets) memcpy(shared_secrets, ss, n_hops * sizeof ss[0]);

  amp_wipe(ss, sizeof ss);
  amp_wipe(key, sizeof key);
  amp_wipe(stream, sizeof stream);
  amp_wipe(filler, sizeof filler);
  amp_wipe(mix, sizeof mix);
  return AMP_OK;
}

/* ---- failure onions ------------------------------------------------------ */

long amp_sphinx_fail_create(uint8_t *out, size_t cap, const uint8_t ss[32], const uint8_t *msg,
                            size_t msg_len) {
  uint8_t um[32];
  size_t pad_len = msg_len < AMP_FAIL_MIN_PAD ? AMP_FAIL_MIN_PAD - msg_len : 0;
  size_t total = AMP_SHA256_LEN + 2 + msg_len + 2 + pad_len;
  if (msg_len > 0xffff || total > AMP_FAIL_MAX_LEN || total > cap) return AMP_ERR_OVERFLOW;

  uint8_t *p = out + AMP_SHA256_LEN;
  amp_put_be16(p, (uint16_t)msg_len);
  memcpy(p + 2, msg, msg_len);
  amp_put_be16(p + 2 + msg_len, (uint16_t)pad_len);
  memset(p + 4 + msg_len, 0, pad_len);

  amp_sphinx_derive_key(um, "um", ss);
  amp_hmac_sha256(out, um, sizeof um, p, total - AMP_SHA256_LEN);
  amp_wipe(um, sizeof um);
  amp_sphinx_fail_wrap(out, total, ss);
  return (long)total;
}

void amp_sphinx_fail_wrap(uint8_t *pkt, size_t len, const uint8_t ss[32]) {
  uint8_t ammag[32];
  amp_sphinx_derive_key(ammag, "ammag", ss);
  amp_chacha20_xor(pkt, pkt, len, ammag, amp_zero_nonce_, 0);
  amp_wipe(ammag, sizeof ammag);
}

int amp_sphinx_fail_decode_var(size_t *hop_index, const uint8_t **msg, size_t *msg_len,
                               uint8_t *pkt, size_t len, const uint8_t (*shared_secrets)[32],
                               size_t n_hops) {
  uint8_t um[32], mac[32];
  if (len < AMP_SHA256_LEN + 4 || len > AMP_FAIL_MAX_LEN) return AMP_ERR_LENGTH;
  for (size_t i = 0; i < n_hops; i++) {
    amp_sphinx_fail_wrap(pkt, len, shared_secrets[i]);
    amp_sphinx_derive_key(um, "um", shared_secrets[i]);
    amp_hmac_sha256(mac, um, sizeof um, pkt + AMP_SHA256_LEN, len - AMP_SHA256_LEN);
    int ok = amp_ct_eq(mac, pkt, AMP_SHA256_LEN);
    amp_wipe(um, sizeof um);
    if (!ok) continue;
    const uint8_t *p = pkt + AMP_SHA256_LEN;
    size_t body = len - AMP_SHA256_LEN;
    size_t fl = amp_be16(p);
    if (2 + fl + 2 > body) return AMP_ERR_LENGTH;
    size_t pl = amp_be16(p + 2 + fl);
    if (2 + fl + 2 + pl != body) return AMP_ERR_LENGTH;
    *hop_index = i;
    *msg = p + 2;
    *msg_len = fl;
    return AMP_OK;
  }
  return AMP_ERR_FAIL_HMAC;
}
