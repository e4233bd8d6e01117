/* amp_frame.c: the fabric frame codec (amp_frame.h). No DPDK here. */
#include "amp_frame.h"

#include <string.h>

#define ETHERTYPE_IPV4 0x0800
#define IPPROTO_UDP_ 17
#define IP_FLAG_DF 0x4000
#define IP_FLAG_MF 0x2000
#define IP_FRAG_OFF_MASK 0x1fff
#define IP_TTL_ 64

/* Offsets inside a frame. */
#define OFF_ETH_TYPE 12
#define OFF_IP AMP_FRAME_ETH_LEN
#define OFF_UDP (OFF_IP + AMP_FRAME_IP_LEN)
#define OFF_HDR AMP_FRAME_L2L4_LEN
#define MIN_FRAME (AMP_FRAME_L2L4_LEN + AMP_FRAME_HDR_LEN + AMP_FRAME_TAG_LEN)

const char *amp_frame_drop_str(int reason) {
  switch (reason) {
  case AMP_FRAME_OK: return "ok";
#define AMP_FRAME_DROP_STR_(n, s) case AMP_FRAME_DROP_##n: return s;
  AMP_FRAME_DROP_LIST(AMP_FRAME_DROP_STR_)
#undef AMP_FRAME_DROP_STR_
  default: return "unknown drop reason";
  }
}

/* One's complement sum of the IPv4 header (20 bytes), folded. */
static uint16_t ip_cksum(const uint8_t *ip) {
  uint32_t sum = 0;
  for (int i = 0; i < AMP_FRAME_IP_LEN; i += 2) sum += amp_be16(ip + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

int amp_frame_parse_port(amp_frame_t *f, const uint8_t *pkt, size_t len, uint16_t dst_port) {
  /* L2-L4: anything that is not IPv4/UDP to our port is simply not ours. */
  if (len < AMP_FRAME_L2L4_LEN) return AMP_FRAME_DROP_NOT_IPV4_UDP;
  if (amp_be16(pkt + OFF_ETH_TYPE) != ETHERTYPE_IPV4) return AMP_FRAME_DROP_NOT_IPV4_UDP;
  const uint8_t *ip = pkt + OFF_IP;
  if ((ip[0] >> 4) != 4) return AMP_FRAME_DROP_NOT_IPV4_UDP;
  if (ip[9] != IPPROTO_UDP_) return AMP_FRAME_DROP_NOT_IPV4_UDP;
  const uint8_t *udp = pkt + OFF_UDP;
  if (dst_port && amp_be16(udp + 2) != dst_port) return AMP_FRAME_DROP_NOT_IPV4_UDP;
  /* From here on it claims to be a fabric frame: every flaw is malformed. */
  if ((ip[0] & 0x0f) != 5) return AMP_FRAME_DROP_MALFORMED;
  if (amp_be16(ip + 6) & (IP_FLAG_MF | IP_FRAG_OFF_MASK)) return AMP_FRAME_DROP_MALFORMED;
  if (len > AMP_FRAME_MAX_LEN || len < MIN_FRAME) return AMP_FRAME_DROP_MALFORMED;
  if (amp_be16(ip + 2) != len - AMP_FRAME_ETH_LEN) return AMP_FRAME_DROP_MALFORMED;
  if (ip_cksum(ip) != 0) return AMP_FRAME_DROP_MALFORMED;
  if (amp_be16(udp + 4) != len - OFF_UDP) return AMP_FRAME_DROP_MALFORMED;

  const uint8_t *h = pkt + OFF_HDR;
  if (memcmp(h, AMP_FRAME_MAGIC, 4) != 0) return AMP_FRAME_DROP_MALFORMED;
  if (h[4] != AMP_FRAME_VERSION || h[5] != 0) return AMP_FRAME_DROP_MALFORMED;
  uint16_t count = amp_be16(h + 6);
  if (count > AMP_FRAME_MAX_RECORDS) return AMP_FRAME_DROP_MALFORMED;

  size_t end = len - AMP_FRAME_TAG_LEN;   /* records must end exactly here */
  size_t off = OFF_HDR + AMP_FRAME_HDR_LEN;
  for (uint16_t i = 0; i < count; i++) {
    if (end - off < AMP_FRAME_REC_HDR_LEN) return AMP_FRAME_DROP_MALFORMED;
    uint16_t mlen = amp_be16(pkt + off + 8);
    if (mlen < 2) return AMP_FRAME_DROP_MALFORMED;   /* no room for the type */
    if (end - off - AMP_FRAME_REC_HDR_LEN < mlen) return AMP_FRAME_DROP_MALFORMED;
    f->rec[i].scid = amp_be64(pkt + off);
    f->rec[i].len = mlen;
    f->rec[i].msg = pkt + off + AMP_FRAME_REC_HDR_LEN;
    off += AMP_FRAME_REC_HDR_LEN + (size_t)mlen;
  }
  if (off != end) return AMP_FRAME_DROP_MALFORMED;

  memcpy(f->addr.dst_mac, pkt, 6);
  memcpy(f->addr.src_mac, pkt + 6, 6);
  memcpy(f->addr.src_ip, ip + 12, 4);
  memcpy(f->addr.dst_ip, ip + 16, 4);
  f->addr.src_port = amp_be16(udp);
  f->addr.dst_port = amp_be16(udp + 2);
  f->count = count;
  f->gateway_id = amp_be64(h + 8);
  f->seq = amp_be64(h + 16);
  f->auth = h;
  f->auth_len = end - OFF_HDR;
  f->tag = pkt + end;
  return AMP_FRAME_OK;
}

int amp_frame_parse(amp_frame_t *f, const uint8_t *pkt, size_t len) {
  return amp_frame_parse_port(f, pkt, len, AMP_FRAME_UDP_PORT);
}

/* Finishes h (the frame's records absorbed) and compares with its tag in
 * constant time. */
static int tag_matches_(amp_hmac_t *h, const amp_frame_t *f) {
  uint8_t mac[AMP_SHA256_LEN];
  amp_hmac_final(h, mac);
  int ok = amp_ct_eq(mac, f->tag, AMP_FRAME_TAG_LEN);
  amp_wipe(mac, sizeof mac);
  return ok;
}

int amp_frame_verify_hmac(const amp_frame_t *f, const amp_hmac_t *kctx) {
  amp_hmac_t h = *kctx;
  amp_hmac_update(&h, f->auth, f->auth_len);
  return tag_matches_(&h, f);
}

void amp_frame_verify_hmac_n(const amp_frame_t *const *f, const amp_hmac_t *const *kctx,
                             size_t n, int *ok) {
  amp_hmac_t h[32];
  amp_hmac_t *hp[32];
  const void *d[32];
  size_t l[32];
  for (size_t base = 0; base < n; base += 32) {
    size_t k = n - base < 32 ? n - base : 32;
    for (size_t i = 0; i < k; i++) {
      h[i] = *kctx[base + i];
      hp[i] = &h[i];
      d[i] = f[base + i]->auth;
      l[i] = f[base + i]->auth_len;
    }
    amp_hmac_update_n(hp, d, l, k);
    uint8_t mac[32][AMP_SHA256_LEN];
    amp_hmac_final_n(hp, mac, k); /* wipes h; the finals batched too */
    for (size_t i = 0; i < k; i++)
      ok[base + i] = amp_ct_eq(mac[i], f[base + i]->tag, AMP_FRAME_TAG_LEN);
    amp_wipe(mac, k * sizeof mac[0]);
  }
}

int amp_frame_verify(const amp_frame_t *f, const uint8_t key[32]) {
  amp_hmac_t h;
  amp_hmac_init(&h, key, 32);
  int ok = amp_frame_verify_hmac(f, &h);
  amp_wipe(&h, sizeof h);
  return ok;
}

void amp_frame_addr_reply(amp_frame_addr_t *out, const amp_frame_addr_t *in) {
  amp_frame_addr_t r;
  memcpy(r.dst_mac, in->src_mac, 6);
  memcpy(r.src_mac, in->dst_mac, 6);
  memcpy(r.src_ip, in->dst_ip, 4);
  memcpy(r.dst_ip, in->src_ip, 4);
  r.src_port = in->dst_port;
  r.dst_port = in->src_port;
  *out = r;
}

void amp_frame_begin(amp_frame_builder_t *b, uint8_t *buf, size_t cap,
                     const amp_frame_addr_t *addr, uint64_t gateway_id, uint64_t seq) {
  b->buf = buf;
  b->cap = cap > AMP_FRAME_MAX_LEN ? AMP_FRAME_MAX_LEN : cap;
  b->len = 0;
  b->count = 0;
  b->err = AMP_OK;
  if (b->cap < MIN_FRAME) {
    b->err = AMP_ERR_OVERFLOW;
    return;
  }
  memcpy(buf, addr->dst_mac, 6);
  memcpy(buf + 6, addr->src_mac, 6);
  amp_put_be16(buf + OFF_ETH_TYPE, ETHERTYPE_IPV4);
  uint8_t *ip = buf + OFF_IP;
  memset(ip, 0, AMP_FRAME_IP_LEN);
  ip[0] = 0x45;
  amp_put_be16(ip + 6, IP_FLAG_DF);
  ip[8] = IP_TTL_;
  ip[9] = IPPROTO_UDP_;
  memcpy(ip + 12, addr->src_ip, 4);
  memcpy(ip + 16, addr->dst_ip, 4);
  uint8_t *udp = buf + OFF_UDP;
  amp_put_be16(udp, addr->src_port);
  amp_put_be16(udp + 2, addr->dst_port);
  amp_put_be16(udp + 4, 0);
  amp_put_be16(udp + 6, 0);
  uint8_t *h = buf + OFF_HDR;
  memcpy(h, AMP_FRAME_MAGIC, 4);
  h[4] = AMP_FRAME_VERSION;
  h[5] = 0;
  amp_put_be16(h + 6, 0);
  amp_put_be64(h + 8, gateway_id);
  amp_put_be64(h + 16, seq);
  b->len = OFF_HDR + AMP_FRAME_HDR_LEN;
}

size_t amp_frame_room(const amp_frame_builder_t *b) {
  if (b->err || b->count >= AMP_FRAME_MAX_RECORDS) return 0;
  size_t need = b->len + AMP_FRAME_REC_HDR_LEN + AMP_FRAME_TAG_LEN;
  if (need >= b->cap) return 0;
  size_t room = b->cap - need;
  return room > UINT16_MAX ? UINT16_MAX : room;
}

int amp_frame_add(amp_frame_builder_t *b, uint64_t scid, const uint8_t *msg, uint16_t len) {
  if (b->err) return b->err;
  if (len < 2) return AMP_ERR_LENGTH;
  if (amp_frame_room(b) < len) return AMP_ERR_OVERFLOW;
  uint8_t *p = b->buf + b->len;
  amp_put_be64(p, scid);
  amp_put_be16(p + 8, len);
  memcpy(p + AMP_FRAME_REC_HDR_LEN, msg, len);
  b->len += AMP_FRAME_REC_HDR_LEN + (size_t)len;
  b->count++;
  return AMP_OK;
}

size_t amp_frame_finish_hmac(amp_frame_builder_t *b, const amp_hmac_t *kctx) {
  if (b->err) return 0;
  uint8_t *buf = b->buf;
  uint8_t *ip = buf + OFF_IP;
  size_t total = b->len + AMP_FRAME_TAG_LEN;
  amp_put_be16(buf + OFF_HDR + 6, b->count);
  amp_put_be16(ip + 2, (uint16_t)(total - AMP_FRAME_ETH_LEN));
  amp_put_be16(ip + 10, 0);
  amp_put_be16(ip + 10, ip_cksum(ip));
  amp_put_be16(buf + OFF_UDP + 4, (uint16_t)(total - OFF_UDP));
  amp_hmac_t h = *kctx;
  uint8_t mac[AMP_SHA256_LEN];
  amp_hmac_update(&h, buf + OFF_HDR, b->len - OFF_HDR);
  amp_hmac_final(&h, mac);
  memcpy(buf + b->len, mac, AMP_FRAME_TAG_LEN);
  amp_wipe(mac, sizeof mac);
  b->len = total;
  return total;
}

size_t amp_frame_finish(amp_frame_builder_t *b, const uint8_t key[32]) {
  amp_hmac_t h;
  amp_hmac_init(&h, key, 32);
  size_t n = amp_frame_finish_hmac(b, &h);
  amp_wipe(&h, sizeof h);
  return n;
}

/* The window holds seqs (top - AMP_FRAME_WINDOW, top]; bit (seq % WINDOW)
 * says whether that seq was seen. seq 0 is never valid (top 0 means none). */
int amp_frame_window_check(const amp_frame_window_t *w, uint64_t seq) {
  if (seq == 0) return 0;
  if (seq > w->top) return 1;
  if (w->top - seq >= AMP_FRAME_WINDOW) return 0;
  uint64_t bit = seq % AMP_FRAME_WINDOW;
  return !((w->bits[bit / 64] >> (bit % 64)) & 1);
}

void amp_frame_window_update(amp_frame_window_t *w, uint64_t seq) {
  if (seq == 0) return;
  if (seq > w->top) {
    uint64_t diff = seq - w->top;
    if (diff >= AMP_FRAME_WINDOW) {
      memset(w->bits, 0, sizeof w->bits);
    } else {
      /* Clear the slots of top+1 .. seq, which leave the window's bottom. */
      for (uint64_t s = w->top + 1; s <= seq; s++) {
        uint64_t bit = s % AMP_FRAME_WINDOW;
        if (bit % 64 == 0 && seq - s >= 63) {   /* a whole word at once */
          w->bits[bit / 64] = 0;
          s += 63;
          continue;
        }
        w->bits[bit / 64] &= ~(1ULL << (bit % 64));
      }
    }
    w->top = seq;
  } else if (w->top - seq >= AMP_FRAME_WINDOW) {
    return;   /* too old: nothing to mark */
  }
  uint64_t bit = seq % AMP_FRAME_WINDOW;
  w->bits[bit / 64] |= 1ULL << (bit % 64);
}

int amp_frame_window_accept(amp_frame_window_t *w, uint64_t seq) {
  if (!amp_frame_window_check(w, seq)) return 0;
  amp_frame_window_update(w, seq);
  return 1;
}
