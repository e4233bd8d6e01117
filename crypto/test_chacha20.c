/* test_chacha20.c: RFC 8439 vectors (2.3.2 block, 2.4.2 encryption, A.1
 * keystreams), xor in place, lengths that are not multiples of 64 against the
 * block function, counter wrap, and the zero-nonce stream. Vectors checked
 * against Python's cryptography package. */
#include "amp_chacha20.h"

#include "amp_test.h"

static void unhex(uint8_t *out, size_t n, const char *hex) {
  AMP_REQUIRE(amp_test_unhex(out, n, hex) == (long)n);
}

static void check_block_232(void) {
  uint8_t key[32], nonce[12], want[64], got[64];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
  unhex(nonce, 12, "000000090000004a00000000");
  unhex(want, 64,
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e");
  amp_chacha20_block(got, key, 1, nonce);
  AMP_CHECK_MEM(got, want, 64);
}

static const char sunscreen[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one "
    "tip for the future, sunscreen would be it.";

static void check_encrypt_242(void) {
  uint8_t key[32], nonce[12], want[114], got[114], buf[114];
  AMP_REQUIRE(sizeof sunscreen - 1 == 114);
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)i;
  unhex(nonce, 12, "000000000000004a00000000");
  unhex(want, 114,
        "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
        "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
        "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
        "5af90bbf74a35be6b40b8eedf2785e42874d");
  amp_chacha20_xor(got, (const uint8_t *)sunscreen, 114, key, nonce, 1);
  AMP_CHECK_MEM(got, want, 114);
  /* In place, and back again. */
  memcpy(buf, sunscreen, 114);
  amp_chacha20_xor(buf, buf, 114, key, nonce, 1);
  AMP_CHECK_MEM(buf, want, 114);
  amp_chacha20_xor(buf, buf, 114, key, nonce, 1);
  AMP_CHECK_MEM(buf, sunscreen, 114);
}

static void check_a1(void) {
  static const struct {
    const char *key, *nonce;
    uint32_t counter;
    const char *out;
  } v[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", 0,
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
     "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", 1,
     "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
     "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"},
    {"0000000000000000000000000000000000000000000000000000000000000001",
     "000000000000000000000000", 1,
     "3aeb5224ecf849929b9d828db1ced4dd832025e8018b8160b82284f3c949aa5a"
     "8eca00bbb4a73bdad192b5c42f73f2fd4e273644c8b36125a64addeb006c13a0"},
    {"00ff000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", 2,
     "72d54dfbf12ec44b362692df94137f328fea8da73990265ec1bbbea1ae9af0ca"
     "13b25aa26cb4a648cb9b9d1be65b2c0924a66c54d545ec1b7374f4872e99f096"},
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000002", 0,
     "c2c64d378cd536374ae204b9ef933fcd1a8b2288b3dfa49672ab765b54ee27c7"
     "8a970e0e955c14f3a88e741b97c286f75f8fc299e8148362fa198a39531bed6d"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    uint8_t key[32], nonce[12], want[64], got[64], zero[64] = {0};
    unhex(key, 32, v[i].key);
    unhex(nonce, 12, v[i].nonce);
    unhex(want, 64, v[i].out);
    amp_chacha20_block(got, key, v[i].counter, nonce);
    AMP_CHECK_MEM(got, want, 64);
    amp_chacha20_xor(got, zero, 64, key, nonce, v[i].counter);
    AMP_CHECK_MEM(got, want, 64);
  }
  /* Vectors 1 and 2 are consecutive blocks of one stream. */
  uint8_t key[32] = {0}, want[128], got[128];
  unhex(want, 64, v[0].out);
  unhex(want + 64, 64, v[1].out);
  amp_chacha20_stream(got, 128, key);
  AMP_CHECK_MEM(got, want, 128);
}

static uint8_t key_p[32], nonce_p[12], data[1400], ref[1400], got[1400];

/* ref = data ^ (blocks counter, counter+1, ...) built from amp_chacha20_block. */
static void reference(uint8_t *out, const uint8_t *in, size_t len, uint32_t counter) {
  uint8_t blk[64];
  for (size_t off = 0; off < len; off += 64, counter++) {
    amp_chacha20_block(blk, key_p, counter, nonce_p);
    for (size_t i = 0; i < 64 && off + i < len; i++) out[off + i] = in[off + i] ^ blk[i];
  }
}

static void check_lengths(void) {
  for (int i = 0; i < 32; i++) key_p[i] = (uint8_t)(i * 13 + 1);
  for (int i = 0; i < 12; i++) nonce_p[i] = (uint8_t)(i * 5 + 2);
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7 + 3);

  /* 1000 bytes at counter 7: both ends against Python. */
  uint8_t head[32], tail[32];
  unhex(head, 32, "971fc9b7537c86ca582e9e9ae6c7d800eec1c72e0462ce75d6b5a655ae255f30");
  unhex(tail, 32, "7eb2d2bbc4ae032e0a428dd7cc49f72b31b4608090da200c94699ce3734b5a2f");
  amp_chacha20_xor(got, data, 1000, key_p, nonce_p, 7);
  AMP_CHECK_MEM(got, head, 32);
  AMP_CHECK_MEM(got + 968, tail, 32);

  /* Every length 0..1400 (so every SIMD width and remainder) at a few
   * counters, out of place and in place, against the block function. */
  static const uint32_t counters[] = {0, 1, 7, 0xfffffff0u};
  for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
    for (size_t len = 0; len <= sizeof data; len += (len < 300 ? 1 : 37)) {
      reference(ref, data, len, counters[c]);
      memset(got, 0xa5, sizeof got);
      amp_chacha20_xor(got, data, len, key_p, nonce_p, counters[c]);
      AMP_CHECK_MEM(got, ref, len);
      AMP_CHECK(len == sizeof got || got[len] == 0xa5); /* no write past len */
      memcpy(got, data, len);
      amp_chacha20_xor(got, got, len, key_p, nonce_p, counters[c]);
      AMP_CHECK_MEM(got, ref, len);
    }
  }
  /* Unaligned buffers. */
  for (size_t off = 1; off < 4; off++) {
    reference(ref, data + off, 700, 3);
    amp_chacha20_xor(got + off, data + off, 700, key_p, nonce_p, 3);
    AMP_CHECK_MEM(got + off, ref, 700);
  }
  /* len 0 writes nothing; out and in may be anything valid. */
  got[0] = 0x5a;
  amp_chacha20_xor(got, data, 0, key_p, nonce_p, 0);
  amp_chacha20_stream(got, 0, key_p);
  AMP_CHECK(got[0] == 0x5a);
}

static void check_wrap(void) {
  /* The 32-bit counter wraps to 0; the nonce does not change. */
  uint8_t b0[64], b1[64], z[128] = {0}, out[128];
  amp_chacha20_block(b0, key_p, 0xffffffffu, nonce_p);
  amp_chacha20_block(b1, key_p, 0, nonce_p);
  amp_chacha20_xor(out, z, 128, key_p, nonce_p, 0xffffffffu);
  AMP_CHECK_MEM(out, b0, 64);
  AMP_CHECK_MEM(out + 64, b1, 64);
}

static void check_stream(void) {
  /* stream == xor of zeros with a zero nonce from counter 0; 1366 bytes is
   * BOLT #4's onion stream length. Tail against Python. */
  static uint8_t zeros[1366], a[1366], b[1366];
  static const uint8_t zn[12];
  uint8_t tail[32];
  unhex(tail, 32, "be6518b655ab41caaafbe4622f1476e264f996dcee70548836c38a2540036b22");
  amp_chacha20_stream(a, sizeof a, key_p);
  AMP_CHECK_MEM(a + 1334, tail, 32);
  amp_chacha20_xor(b, zeros, sizeof b, key_p, zn, 0);
  AMP_CHECK_MEM(a, b, sizeof a);
  for (size_t len = 1; len < 300; len += 3) {
    memset(b, 0xa5, sizeof b);
    amp_chacha20_stream(b, len, key_p);
    AMP_CHECK_MEM(b, a, len);
    AMP_CHECK(b[len] == 0xa5);
  }
}

int main(void) {
  AMP_CHECK(amp_chacha20_use("nonsense") == AMP_ERR_STATE);
  static const char *impls[] = {"portable", "avx2"};
  for (int i = 0; i < 2; i++) {
    if (amp_chacha20_use(impls[i]) != AMP_OK) {
      fprintf(stderr, "SKIPPED: %s not available on this CPU\n", impls[i]);
      continue;
    }
    AMP_CHECK(strcmp(amp_chacha20_impl(), impls[i]) == 0);
    AMP_CHECK_EQ(amp_chacha20_wide_len(), i ? 512 : 64);
    fprintf(stderr, "implementation %s\n", amp_chacha20_impl());
    check_block_232();
    check_encrypt_242();
    check_a1();
    check_lengths();
    check_wrap();
    check_stream();
  }
  AMP_CHECK(amp_chacha20_use("auto") == AMP_OK);
  return amp_test_done();
}
