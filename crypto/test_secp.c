/* test_secp.c: the secp256k1 glue against the BOLT #4 onion vector's keys,
 * known edge values, and randomized ECDH symmetry (seed printed). */
#include <string.h>

#include <jansson.h>

#include <secp256k1.h>
#include <secp256k1_ecdh.h>

#include "amp_secp.h"
#include "amp_sha256.h"
#include "amp_test.h"

/* The group order n. */
static const uint8_t order_n[32] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

static void unhex_req(uint8_t *out, size_t want, const char *hex) {
  AMP_REQUIRE(hex != NULL);
  AMP_REQUIRE(amp_test_unhex(out, want, hex) == (long)want);
}

static void rand_bytes(uint64_t *s, uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(amp_test_rand(s) >> 56);
}

/* The vector: session key 0x41.. is also hop 0's node key; the node keys of
 * hops 0..4 are in "decode"; the error vector lists the shared secrets that
 * the sender's ephemeral chain gives with them (hop 0 checked here, the rest
 * in test_sphinx). */
static void test_vector_keys(void) {
  size_t len;
  char *txt = amp_test_read_file(amp_test_vector_path("bolt04/onion-test.json"), &len);
  json_error_t jerr;
  json_t *root = json_loads(txt, 0, &jerr);
  AMP_REQUIRE(root != NULL);
  json_t *hops = json_object_get(json_object_get(root, "generate"), "hops");
  json_t *dec = json_object_get(root, "decode");
  AMP_REQUIRE(json_array_size(hops) == 5 && json_array_size(dec) == 5);
  for (size_t i = 0; i < 5; i++) {
    uint8_t sk[32], want[33], got[33];
    amp_pubkey_t pk, parsed;
    unhex_req(sk, 32, json_string_value(json_array_get(dec, i)));
    unhex_req(want, 33, json_string_value(json_object_get(json_array_get(hops, i), "pubkey")));
    AMP_CHECK_EQ(amp_secp_seckey_verify(sk), AMP_OK);
    AMP_CHECK_EQ(amp_secp_pubkey_create(&pk, sk), AMP_OK);
    amp_secp_pubkey_serialize(got, &pk);
    AMP_CHECK_MEM(got, want, 33);
    AMP_CHECK_EQ(amp_secp_pubkey_parse(&parsed, want), AMP_OK);
    AMP_CHECK_MEM(parsed.data, pk.data, 64);
  }
  json_decref(root);
  free(txt);

  /* Hop 0's shared secret from the error vector: session key 0x41 with hop
   * 0's key, from both sides. */
  uint8_t k41[32], pub41[33], ss_want[32], ss[32];
  amp_pubkey_t p41;
  memset(k41, 0x41, 32);
  unhex_req(pub41, 33, "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619");
  unhex_req(ss_want, 32, "53eb63ea8a3fec3b3cd433b85cd62a4b145e1dda09391b348c4e1cd36a03ea66");
  AMP_CHECK_EQ(amp_secp_pubkey_parse(&p41, pub41), AMP_OK);
  AMP_CHECK_EQ(amp_secp_ecdh(ss, &p41, k41), AMP_OK);
  AMP_CHECK_MEM(ss, ss_want, 32);

  /* libsecp's default ECDH hash is SHA256 of the compressed point: compute
   * the point with tweak_mul and hash it ourselves. */
  uint8_t pt[33], h[32];
  amp_pubkey_t q = p41;
  AMP_CHECK_EQ(amp_secp_pubkey_tweak_mul(&q, k41), AMP_OK);
  amp_secp_pubkey_serialize(pt, &q);
  amp_sha256(h, pt, 33);
  AMP_CHECK_MEM(h, ss_want, 32);
}

static void test_parse_rejects(void) {
  uint8_t in[33];
  amp_pubkey_t pk;
  uint8_t k[32];
  memset(k, 0x41, 32);
  AMP_CHECK_EQ(amp_secp_pubkey_create(&pk, k), AMP_OK);
  amp_secp_pubkey_serialize(in, &pk);
  /* Every prefix other than 02/03 is rejected at 33 bytes (04/06/07 need 65). */
  for (int pre = 0; pre < 256; pre++) {
    amp_pubkey_t t;
    in[0] = (uint8_t)pre;
    int want = (pre == 2 || pre == 3) ? AMP_OK : AMP_ERR_BAD_KEY;
    AMP_CHECK_EQ(amp_secp_pubkey_parse(&t, in), want);
  }
  /* x >= p. */
  memset(in + 1, 0xff, 32);
  in[0] = 2;
  AMP_CHECK_EQ(amp_secp_pubkey_parse(&pk, in), AMP_ERR_BAD_KEY);
  /* x values off the curve: about half of all x. Both parities fail alike. */
  int off = 0, on = 0;
  for (uint32_t x = 1; x < 64; x++) {
    amp_pubkey_t a, b;
    memset(in, 0, 33);
    amp_put_be32(in + 29, x);
    in[0] = 2;
    int ra = amp_secp_pubkey_parse(&a, in);
    in[0] = 3;
    int rb = amp_secp_pubkey_parse(&b, in);
    AMP_CHECK_EQ(ra, rb);
    if (ra == AMP_OK) on++; else off++;
  }
  AMP_CHECK(off > 10 && on > 10);
}

static void test_seckey_edges(void) {
  uint8_t z[32] = {0}, k[32], one[32] = {0}, out[32];
  amp_pubkey_t pk, g;
  one[31] = 1;
  AMP_CHECK_EQ(amp_secp_seckey_verify(z), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_seckey_verify(order_n), AMP_ERR_BAD_KEY);
  memcpy(k, order_n, 32);
  k[31]--;
  AMP_CHECK_EQ(amp_secp_seckey_verify(k), AMP_OK);
  k[31] += 2;
  AMP_CHECK_EQ(amp_secp_seckey_verify(k), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_pubkey_create(&pk, z), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_pubkey_create(&pk, order_n), AMP_ERR_BAD_KEY);

  /* ECDH with a bad secret key: BAD_KEY and the output wiped. */
  AMP_CHECK_EQ(amp_secp_pubkey_create(&g, one), AMP_OK);
  memset(out, 0xaa, 32);
  AMP_CHECK_EQ(amp_secp_ecdh(out, &g, z), AMP_ERR_BAD_KEY);
  AMP_CHECK(amp_ct_is_zero(out, 32));
  AMP_CHECK_EQ(amp_secp_ecdh(out, &g, order_n), AMP_ERR_BAD_KEY);

  /* Bad tweaks leave the key unchanged. */
  amp_pubkey_t before = g;
  AMP_CHECK_EQ(amp_secp_pubkey_tweak_mul(&g, z), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_pubkey_tweak_mul(&g, order_n), AMP_ERR_BAD_KEY);
  AMP_CHECK_MEM(g.data, before.data, 64);
  uint8_t sk[32];
  memset(sk, 0x42, 32);
  memcpy(k, sk, 32);
  AMP_CHECK_EQ(amp_secp_seckey_tweak_mul(sk, z), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_seckey_tweak_mul(sk, order_n), AMP_ERR_BAD_KEY);
  AMP_CHECK_MEM(sk, k, 32);
  /* Tweak by one is the identity. */
  AMP_CHECK_EQ(amp_secp_seckey_tweak_mul(sk, one), AMP_OK);
  AMP_CHECK_MEM(sk, k, 32);
}

static void test_random(void) {
  secp256k1_context *lctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  AMP_REQUIRE(lctx != NULL);
  uint64_t s = amp_test_seed();
  if (!s) s = 1;
  for (int it = 0; it < 64; it++) {
    uint8_t a[32], b[32], t[32], sab[32], sba[32], ser[33], ser2[33];
    amp_pubkey_t pa, pb, q, r;
    rand_bytes(&s, a, 32);
    rand_bytes(&s, b, 32);
    rand_bytes(&s, t, 32);
    AMP_REQUIRE(amp_secp_pubkey_create(&pa, a) == AMP_OK);
    AMP_REQUIRE(amp_secp_pubkey_create(&pb, b) == AMP_OK);
    /* ECDH symmetry. */
    AMP_CHECK_EQ(amp_secp_ecdh(sab, &pb, a), AMP_OK);
    AMP_CHECK_EQ(amp_secp_ecdh(sba, &pa, b), AMP_OK);
    AMP_CHECK_MEM(sab, sba, 32);
    /* the shared point is a * (b*G), compressed, and the secret its SHA-256:
     * what libsecp's own default hash gives (the BOLT #4 definition) */
    uint8_t pt[33], h[32], lib[32];
    AMP_CHECK_EQ(amp_secp_ecdh_point(pt, &pb, a), AMP_OK);
    q = pb;
    AMP_CHECK_EQ(amp_secp_pubkey_tweak_mul(&q, a), AMP_OK);
    amp_secp_pubkey_serialize(ser, &q);
    AMP_CHECK_MEM(pt, ser, 33);
    amp_sha256(h, pt, 33);
    AMP_CHECK_MEM(h, sab, 32);
    secp256k1_pubkey lp;
    amp_secp_pubkey_serialize(ser, &pb);
    AMP_REQUIRE(secp256k1_ec_pubkey_parse(lctx, &lp, ser, 33) == 1);
    AMP_REQUIRE(secp256k1_ecdh(lctx, lib, &lp, a, NULL, NULL) == 1);
    AMP_CHECK_MEM(lib, sab, 32);
    /* serialize / parse round trip. */
    amp_secp_pubkey_serialize(ser, &pa);
    AMP_CHECK(ser[0] == 2 || ser[0] == 3);
    AMP_CHECK_EQ(amp_secp_pubkey_parse(&q, ser), AMP_OK);
    AMP_CHECK_MEM(q.data, pa.data, 64);
    /* (a*t)*G == t*(a*G). */
    q = pa;
    AMP_CHECK_EQ(amp_secp_pubkey_tweak_mul(&q, t), AMP_OK);
    AMP_CHECK_EQ(amp_secp_seckey_tweak_mul(a, t), AMP_OK);
    AMP_CHECK_EQ(amp_secp_pubkey_create(&r, a), AMP_OK);
    amp_secp_pubkey_serialize(ser, &q);
    amp_secp_pubkey_serialize(ser2, &r);
    AMP_CHECK_MEM(ser, ser2, 33);
  }
  /* an invalid secret key: an error, the outputs zeroed */
  uint8_t zero[32] = {0}, pt[33], sec[32];
  amp_pubkey_t pk;
  uint8_t one[32] = {0};
  one[31] = 1;
  AMP_REQUIRE(amp_secp_pubkey_create(&pk, one) == AMP_OK);
  memset(pt, 0xee, sizeof pt);
  memset(sec, 0xee, sizeof sec);
  AMP_CHECK_EQ(amp_secp_ecdh_point(pt, &pk, zero), AMP_ERR_BAD_KEY);
  AMP_CHECK_EQ(amp_secp_ecdh(sec, &pk, zero), AMP_ERR_BAD_KEY);
  AMP_CHECK(amp_ct_is_zero(pt, sizeof pt));
  AMP_CHECK(amp_ct_is_zero(sec, sizeof sec));
  secp256k1_context_destroy(lctx);
}

int main(void) {
  AMP_REQUIRE(amp_secp_init() == AMP_OK);
  AMP_REQUIRE(amp_secp_init() == AMP_OK); /* idempotent */
  test_vector_keys();
  test_parse_rejects();
  test_seckey_edges();
  test_random();
  return amp_test_done();
}
