/* amp_admin.h: the admin socket of ampd (DESIGN.md section 6), and the
 * operations interface the daemon implements to answer it.
 *
 * The server: a Unix stream socket (default <data-dir>/ampd.sock), created
 * mode 0600, served by a control thread of its own that never touches the
 * dataplane. One JSON-RPC 2.0 request per line, one reply per line, shaped
 * like Core Lightning's lightning-rpc:
 *   -> {"jsonrpc":"2.0","id":1,"method":"lookupinvoice","params":{"payment_addr":"..."}}
 *   <- {"jsonrpc":"2.0","id":1,"result":{...}}
 *   <- {"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"..."}}
 * Requests must carry "jsonrpc":"2.0", an "id" (string or integer:
 * notifications are not served) and a "method"; "params" is an object of named
 * parameters (absent or null means none). Unknown members, unknown parameters,
 * wrong types and out-of-range values are refused, naming the parameter and
 * what it expects. Batches (arrays) are refused. Replies come in request order.
 *
 * The same thread optionally serves HTTP/1.0 GET /metrics on
 * metrics_addr:metrics_port (127.0.0.1 unless the operator says otherwise).
 *
 * The server does all JSON work; the daemon implements amp_admin_ops_t, one
 * function per method, on plain C structs. Ops are called one at a time (never
 * concurrently with each other: the admin thread and the DPDK telemetry
 * callbacks share one lock), from a thread that is not a worker; they may
 * block briefly (a store commit), which delays other admin clients only.
 * Every op returns AMP_OK or a negative amp_err_t (amp_util.h); the server
 * maps it to a JSON-RPC error (AMP_ADMIN_ERR_LIST) with a message, which the
 * op may make precise with amp_admin_reply_errorf.
 *
 * Secrets: no reply ever carries a key, an AMP share, root or child preimage.
 * addinvoice accepts an MPP preimage from its caller and never returns it;
 * when the caller gives none, the daemon draws one at random and keeps it to
 * itself (whoever needs to know the preimage supplies it). Lookups never show
 * preimages. getconfig hides the value of any option whose name says it is a
 * secret (contains "secret", "seed", "preimage", or is/ends with "key"; not
 * "key-file"/"key_path": those are paths).
 *
 * Limits and hostile clients: a request line over max_request bytes gets an
 * error reply and the connection is closed; invalid JSON gets an error reply
 * and the connection stays; a client silent for idle_timeout_ms with half a
 * request (or not reading its replies) is closed, and one with nothing pending
 * after quiet_timeout_ms; clients above max_clients get one error line and are
 * closed. None of this delays other clients (each is served in turn, a read at
 * a time).
 */
#ifndef AMP_ADMIN_H
#define AMP_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "amp_metrics.h"
#include "amp_util.h"

#define AMP_ADMIN_SOCKET_NAME "ampd.sock"
#define AMP_ADMIN_MAX_REQUEST_DEFAULT (1u << 20)  /* bytes per request line */
#define AMP_ADMIN_MAX_CLIENTS_DEFAULT 1024
#define AMP_ADMIN_IDLE_TIMEOUT_DEFAULT_MS 10000   /* half a request, then silence */
#define AMP_ADMIN_QUIET_TIMEOUT_DEFAULT_MS 600000 /* connected, nothing pending */
#define AMP_ADMIN_METRICS_ANY_PORT (-1)           /* metrics_port: an ephemeral port */

#define AMP_ADMIN_MEMO_MAX 639            /* BOLT #11 description, bytes */
#define AMP_ADMIN_EXPIRY_DEFAULT 2592000  /* seconds: 30 days, the engine's default
                                          * (amp_invoice_add_t); LND's is 1 day */
#define AMP_ADMIN_EXPIRY_MAX 31536000     /* one year, as LND */
#define AMP_ADMIN_LIST_DEFAULT 100        /* listinvoices / listsets page */
#define AMP_ADMIN_LIST_MAX 10000
#define AMP_ADMIN_MSAT_MAX 2100000000000000000ull /* 21e6 BTC */
#define AMP_ADMIN_MAX_PORTS 32

/* Log levels of cfg.log, numbered as DPDK's RTE_LOG_* (pass them on as is). */
#define AMP_ADMIN_LOG_ERR 4
#define AMP_ADMIN_LOG_WARNING 5
#define AMP_ADMIN_LOG_NOTICE 6
#define AMP_ADMIN_LOG_INFO 7
#define AMP_ADMIN_LOG_DEBUG 8

/* JSON-RPC error codes in replies: the standard ones, then ampd's own. */
#define AMP_ADMIN_ERR_LIST(X)                                                  \
  X(PARSE, -32700, "parse error: the line is not valid JSON")                  \
  X(INVALID_REQUEST, -32600, "invalid request")                                \
  X(METHOD_NOT_FOUND, -32601, "method not found")                              \
  X(INVALID_PARAMS, -32602, "invalid params")                                  \
  X(INTERNAL, -32603, "internal error")                                        \
  X(NOT_FOUND, 1001, "not found")                                              \
  X(EXISTS, 1002, "already exists")                                            \
  X(STATE, 1003, "not allowed in the current state")                           \
  X(LIMIT, 1004, "a limit was reached")                                        \
  X(UNAVAILABLE, 1005, "not available in this ampd")                           \
  X(TOO_MANY_CLIENTS, 1006, "too many admin clients")

typedef enum {
#define AMP_ADMIN_ERR_ENUM_(n, v, s) AMP_ADMIN_ERR_##n = v,
  AMP_ADMIN_ERR_LIST(AMP_ADMIN_ERR_ENUM_)
#undef AMP_ADMIN_ERR_ENUM_
} amp_admin_err_t;

/* ---- configuration ---- */

typedef struct {
  const char *data_dir;        /* the socket goes here when socket_path is NULL */
  const char *socket_path;     /* NULL: <data_dir>/ampd.sock; at most 107 bytes */
  size_t max_request;          /* 0: AMP_ADMIN_MAX_REQUEST_DEFAULT */
  uint32_t max_clients;        /* 0: AMP_ADMIN_MAX_CLIENTS_DEFAULT (admin + HTTP) */
  uint32_t idle_timeout_ms;    /* 0: AMP_ADMIN_IDLE_TIMEOUT_DEFAULT_MS */
  uint32_t quiet_timeout_ms;   /* 0: AMP_ADMIN_QUIET_TIMEOUT_DEFAULT_MS; UINT32_MAX: never */
  int metrics_port;            /* 0: no HTTP; 1..65535; AMP_ADMIN_METRICS_ANY_PORT */
  const char *metrics_addr;    /* NULL: "127.0.0.1"; an IPv4 or IPv6 literal */
  /* Events worth a person's attention (a client refused, a request too big),
   * one line each, never a secret. Called from the admin thread. NULL: quiet. */
  void (*log)(void *log_ctx, int level, const char *msg);
  void *log_ctx;
} amp_admin_cfg_t;

/* ---- views: what the ops hand to the server (all byte fields become hex) ---- */

typedef enum {
  AMP_ADMIN_INV_OPEN = 0,      /* accepts payments (AMP: also after a settled set) */
  AMP_ADMIN_INV_SETTLED,       /* MPP: paid and settled */
  AMP_ADMIN_INV_CANCELLED,
  AMP_ADMIN_INV_EXPIRED,
} amp_admin_inv_state_t;

typedef enum {
  AMP_ADMIN_SET_HELD = 0,      /* HTLCs held, total not reached yet */
  AMP_ADMIN_SET_SETTLED,
  AMP_ADMIN_SET_CANCELLED,
  AMP_ADMIN_SET_SETTLING,      /* total reached, verified; its commit in flight */
} amp_admin_set_state_t;

/* One HTLC of a set (or of an MPP payment). */
typedef struct {
  uint64_t scid;               /* short_channel_id; printed "block x tx x out" */
  uint64_t htlc_id;
  uint64_t amt_msat;
  uint32_t child_index;        /* AMP only */
  uint32_t cltv_expiry;
  uint64_t age_ms;             /* held sets only: since this HTLC arrived */
  uint64_t left_ms;            /* held sets only: until its own hold timer fails it */
} amp_admin_htlc_t;

/* A set: the HTLCs of one AMP payment (set_id), or of one MPP payment. */
typedef struct {
  int amp;                     /* 1: set_id is valid; 0: MPP, payment_hash is */
  uint8_t set_id[32];
  uint8_t payment_hash[32];
  uint8_t payment_addr[32];    /* of the invoice it pays */
  amp_admin_set_state_t state;
  const char *cancel_reason;   /* cancelled: a short reason ("mpp timeout",
                                * "child hash mismatch"); may be NULL */
  uint64_t index;              /* position in the log of resolved sets (settled
                                * or cancelled), increasing; 0 while held.
                                * listsets pages by it. */
  uint64_t settle_index;       /* settled: its settle index; else 0 */
  uint64_t time;               /* unix seconds it settled or was cancelled; 0 while held */
  uint64_t total_msat;         /* total_msat of its MPP records */
  uint64_t amt_msat;           /* sum of its HTLCs */
  const amp_admin_htlc_t *htlcs;
  size_t n_htlcs;
} amp_admin_set_t;

typedef struct {
  int amp;                     /* 1: AMP invoice (no payment_hash) */
  int placeholder;             /* created by a spontaneous AMP payment (accept-amp) */
  amp_admin_inv_state_t state;
  uint8_t payment_addr[32];
  uint8_t payment_hash[32];    /* MPP only */
  uint64_t value_msat;         /* 0: any amount */
  uint64_t amt_paid_msat;      /* AMP: accumulates over settled sets */
  uint64_t created;            /* unix seconds */
  uint32_t expiry;             /* seconds after created */
  uint32_t cltv_delta;         /* min final CLTV delta; 0: not shown */
  const char *memo;            /* NULL or UTF-8 */
  uint64_t add_index;
  uint64_t settle_index;       /* MPP, settled: its settle index; else 0 */
  const amp_admin_set_t *sets; /* AMP: its sets; MPP: its payment (0 or 1) */
  size_t n_sets;
} amp_admin_invoice_t;

typedef struct {
  uint16_t port_id;
  char name[64];               /* e.g. "0000:03:00.0" or "net_ring0" */
  uint8_t mac[6];
  uint16_t rx_queues, tx_queues;
  int link_up;
} amp_admin_port_t;

typedef struct {
  char version[32];
  int has_node_id;
  uint8_t node_id[33];         /* compressed public key (never the secret) */
  uint32_t block_height;
  uint64_t uptime_s;
  uint32_t workers;
  uint32_t n_ports;
  amp_admin_port_t ports[AMP_ADMIN_MAX_PORTS];
  char data_dir[4096];
} amp_admin_info_t;

/* ---- method inputs (validated by the server before the op sees them) ---- */

typedef struct {
  int amp;                     /* 1: AMP invoice */
  uint64_t amt_msat;           /* 0: any amount (AMP only; MPP requires 1..MSAT_MAX) */
  const char *memo;            /* "" when absent; <= AMP_ADMIN_MEMO_MAX bytes, no NUL;
                                * a daemon that keeps fewer bytes refuses a longer
                                * one (AMP_ERR_RANGE + errorf), never cuts it */
  uint32_t expiry;             /* seconds, 1..AMP_ADMIN_EXPIRY_MAX (the server applies
                                * the default, AMP_ADMIN_EXPIRY_DEFAULT: 30 days) */
  uint32_t cltv_delta;         /* 0: the daemon's default */
  int has_preimage;            /* MPP only: the caller's preimage; else draw one */
  uint8_t preimage[32];        /* wiped by the server after the op returns */
} amp_admin_addinvoice_t;

typedef struct {
  uint8_t payment_addr[32];
  uint8_t payment_hash[32];    /* MPP only */
  uint64_t add_index;
  uint64_t created;            /* unix seconds */
  uint32_t expiry;
  amp_admin_inv_state_t state;
} amp_admin_addinvoice_res_t;

/* An invoice by payment_addr (AMP or MPP) or by payment_hash (MPP). */
typedef struct {
  int by_hash;                 /* 0: key is a payment_addr; 1: a payment_hash */
  uint8_t key[32];
} amp_admin_invoice_ref_t;

/* listinvoices, as LND: invoices with add_index > index_offset, oldest first,
 * or with reversed, the newest ones with add_index < index_offset (0: from the
 * newest). At most max. */
typedef struct {
  uint64_t index_offset;
  uint32_t max;                /* 1..AMP_ADMIN_LIST_MAX */
  int reversed;
  int pending_only;            /* only open invoices */
} amp_admin_list_invoices_t;

/* listsets: resolved sets by index, the same paging as listinvoices. */
typedef struct {
  uint64_t index_offset;
  uint32_t max;
  int reversed;
  int state;                   /* -1: settled and cancelled; or AMP_ADMIN_SET_SETTLED
                                * or AMP_ADMIN_SET_CANCELLED */
} amp_admin_list_sets_t;

/* ---- the operations interface ---- */

typedef struct amp_admin_reply amp_admin_reply_t;

/* One function per method. Any may be NULL: the method then answers
 * AMP_ADMIN_ERR_UNAVAILABLE, so the daemon can wire them one at a time.
 * ctx is the ops_ctx given to amp_admin_new. r is the reply being built:
 * listing ops emit into it (amp_admin_reply_*), any op may set an error
 * message. Pointers in the inputs live for the call only. */
typedef struct {
  /* getinfo: fill *out (zeroed by the server). */
  int (*getinfo)(void *ctx, amp_admin_info_t *out, amp_admin_reply_t *r);
  /* stats: call amp_admin_reply_stats(r, &st) once. Also feeds `metrics`,
   * HTTP /metrics and DPDK telemetry. */
  int (*stats)(void *ctx, amp_admin_reply_t *r);
  /* addinvoice: create and persist it, fill *out. AMP_ERR_EXISTS when an
   * invoice with that payment_hash exists. */
  int (*addinvoice)(void *ctx, const amp_admin_addinvoice_t *in,
                    amp_admin_addinvoice_res_t *out, amp_admin_reply_t *r);
  /* lookupinvoice: amp_admin_reply_invoice once, or AMP_ERR_NOTFOUND. */
  int (*lookupinvoice)(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r);
  /* listinvoices: amp_admin_reply_invoice per invoice, in any order (the
   * server sorts by add_index); stop when it returns AMP_ERR_FULL. */
  int (*listinvoices)(void *ctx, const amp_admin_list_invoices_t *q, amp_admin_reply_t *r);
  /* cancelinvoice: cancel an open invoice (failing its held HTLCs).
   * AMP_ERR_NOTFOUND, or AMP_ERR_STATE if it is settled or already cancelled. */
  int (*cancelinvoice)(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r);
  /* lookupset: amp_admin_reply_set once (held, settled or cancelled), or
   * AMP_ERR_NOTFOUND. */
  int (*lookupset)(void *ctx, const uint8_t set_id[32], amp_admin_reply_t *r);
  /* listsets: amp_admin_reply_set per resolved set, any order (sorted by
   * index), until AMP_ERR_FULL. */
  int (*listsets)(void *ctx, const amp_admin_list_sets_t *q, amp_admin_reply_t *r);
  /* listheld: amp_admin_reply_set per set (AMP or MPP) with HTLCs held now,
   * each HTLC with age_ms and left_ms. */
  int (*listheld)(void *ctx, amp_admin_reply_t *r);
  /* settip: the block height is now height (1..10,000,000). AMP_ERR_RANGE
   * if the daemon refuses it (explain with amp_admin_reply_errorf). */
  int (*settip)(void *ctx, uint32_t height, amp_admin_reply_t *r);
  /* setloglevel: level is an RTE_LOG_* number, 1 (emerg) .. 8 (debug). */
  int (*setloglevel)(void *ctx, int level, amp_admin_reply_t *r);
  /* getconfig: amp_admin_reply_config_* per option in effect. */
  int (*getconfig)(void *ctx, amp_admin_reply_t *r);
  /* stop: begin a graceful stop, as SIGTERM, and return at once; the reply
   * is sent before the daemon gets to amp_admin_delete. */
  int (*stop)(void *ctx, amp_admin_reply_t *r);
} amp_admin_ops_t;

/* ---- emitting into a reply (from inside an op only) ----
 * Each returns AMP_OK; AMP_ERR_FULL when a listing already holds max entries
 * (stop iterating); AMP_ERR_STATE when this method takes no such entry or a
 * single result was already given, or the view is invalid (an unknown state);
 * AMP_ERR_NOMEM. The view's pointers need to live for the call only. */
AMP_WARN_UNUSED int amp_admin_reply_invoice(amp_admin_reply_t *r, const amp_admin_invoice_t *inv);
AMP_WARN_UNUSED int amp_admin_reply_set(amp_admin_reply_t *r, const amp_admin_set_t *set);
AMP_WARN_UNUSED int amp_admin_reply_stats(amp_admin_reply_t *r, const amp_metrics_stats_t *st);
AMP_WARN_UNUSED int amp_admin_reply_config_str(amp_admin_reply_t *r, const char *key,
                                               const char *value);
AMP_WARN_UNUSED int amp_admin_reply_config_u64(amp_admin_reply_t *r, const char *key,
                                               uint64_t value);
AMP_WARN_UNUSED int amp_admin_reply_config_bool(amp_admin_reply_t *r, const char *key,
                                                int value);

/* amp_admin_reply_errorf sets the message of the error the op is about to
 * return (printf format; a person reads it; never a secret). Without it the
 * server writes one from the method, its parameters and the error code. */
__attribute__((format(printf, 2, 3)))
void amp_admin_reply_errorf(amp_admin_reply_t *r, const char *fmt, ...);

/* ---- the server ---- */

typedef struct amp_admin amp_admin_t;

/* amp_admin_new creates the socket and starts the admin thread.
 * The socket path: if it exists and is a socket nobody accepts on (connect
 * gets ECONNREFUSED: a stale one, e.g. after a crash), it is removed and
 * reused; if it exists otherwise (a live ampd, a file, a directory) the call
 * fails and nothing is touched. The socket is bound under umask 0177, then
 * chmod 0600 and checked (a socket, ours, mode 0600) before listen.
 * With metrics_port set, also binds the HTTP listener.
 * cfg, ops and the strings in cfg are copied; ops_ctx must outlive the server.
 * Returns the server, or NULL with the reason in amp_admin_error().
 * Not thread-safe against itself: call from one thread (the daemon's main). */
amp_admin_t *amp_admin_new(const amp_admin_cfg_t *cfg, const amp_admin_ops_t *ops, void *ops_ctx);

/* amp_admin_error returns why the last amp_admin_new in this thread failed
 * (a sentence naming the path and the cause), "" if none did. */
const char *amp_admin_error(void);

/* amp_admin_delete stops the thread (replies already queued get one last
 * chance to go out), closes every client, removes the socket file if it is
 * still the one this server created, and frees a. NULL is a no-op. No op is
 * running or called after it returns. */
void amp_admin_delete(amp_admin_t *a);

/* amp_admin_socket_path returns the socket's path (valid while a lives). */
const char *amp_admin_socket_path(const amp_admin_t *a);

/* amp_admin_metrics_port returns the HTTP port bound, or 0 without one. */
int amp_admin_metrics_port(const amp_admin_t *a);

/* amp_admin_call runs one request line (no newline needed) as the socket
 * would and returns the reply line (malloc'd, no newline; NULL only when out
 * of memory). For tests and for the daemon's own use. Thread-safe. */
char *amp_admin_call(amp_admin_t *a, const char *req, size_t len);

/* amp_admin_metrics_text renders the Prometheus exposition (the daemon's
 * stats, its getinfo version and uptime, and the admin server's own counters).
 * Returns a malloc'd string and its length, or NULL (out of memory, or no
 * stats op). Thread-safe. */
char *amp_admin_metrics_text(amp_admin_t *a, size_t *len);

/* amp_admin_with_stats calls ops->stats under the ops lock and hands what it
 * emits (with the admin server's own counters appended) to fn, which must not
 * keep the pointers. Returns the op's result, AMP_ERR_STATE if no stats op,
 * or AMP_ERR_NOTFOUND if the op emitted nothing. Thread-safe (DPDK telemetry). */
AMP_WARN_UNUSED int amp_admin_with_stats(amp_admin_t *a,
                                         void (*fn)(void *arg, const amp_metrics_stats_t *st),
                                         void *arg);

/* amp_admin_with_info calls ops->getinfo under the ops lock into *out.
 * Returns the op's result, or AMP_ERR_STATE if there is no getinfo op. */
AMP_WARN_UNUSED int amp_admin_with_info(amp_admin_t *a, amp_admin_info_t *out);

/* Names used on the wire (for tools and tests). */
const char *amp_admin_inv_state_str(amp_admin_inv_state_t s); /* "open" ... */
const char *amp_admin_set_state_str(amp_admin_set_state_t s); /* "held" ... */
/* amp_admin_log_level parses a level name (emerg alert crit err|error
 * warning|warn notice info debug) into 1..8; -1 if unknown. */
int amp_admin_log_level(const char *name);
const char *amp_admin_log_level_str(int level);

#endif /* AMP_ADMIN_H */
