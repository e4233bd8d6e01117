/* amp_rpc.h: JSON-RPC parsing, parameter validation and dispatch of the
 * admin methods onto amp_admin_ops_t (internal to dataplane/admin: the
 * server amp_admin.c and the tests use it; the daemon uses amp_admin.h).
 *
 * No sockets here: a request line goes in, a reply line comes out. The
 * caller serializes calls (the ops lock) and supplies the admin server's own
 * counters, which are appended to every stats view (JSON, Prometheus,
 * telemetry).
 */
#ifndef AMP_RPC_H
#define AMP_RPC_H

#include <stddef.h>

#include "amp_admin.h"

typedef struct {
  const amp_admin_ops_t *ops;
  void *ctx;
  /* The server's own numbers, appended to the daemon's stats. May be empty. */
  const amp_metrics_counter_t *own_counters;
  size_t n_own_counters;
  const amp_metrics_gauge_t *own_gauges;
  size_t n_own_gauges;
} amp_rpc_env_t;

/* amp_rpc_handle answers one request line (len bytes, no newline; need not be
 * NUL-terminated). Returns the reply line, malloc'd, compact JSON with no
 * newline, or NULL when out of memory. *code (may be NULL) gets 0 for a
 * result or the JSON-RPC error code. The request text is not kept; a
 * preimage parameter is wiped from the parsed copy. */
char *amp_rpc_handle(const amp_rpc_env_t *env, const char *req, size_t len, int *code);

/* amp_rpc_error_line builds an error reply with a null id (for the server's
 * own refusals: too big, too many clients, timeout). malloc'd; NULL on OOM. */
char *amp_rpc_error_line(int code, const char *message);

/* amp_rpc_with_stats runs the stats op with fn as the receiver (own numbers
 * appended). Returns the op's result, AMP_ERR_STATE with no stats op, or
 * AMP_ERR_NOTFOUND if the op emitted nothing. */
int amp_rpc_with_stats(const amp_rpc_env_t *env,
                       void (*fn)(void *arg, const amp_metrics_stats_t *st), void *arg);

/* amp_rpc_getinfo runs the getinfo op into *out (zeroed first; strings
 * NUL-terminated after). Returns its result, or AMP_ERR_STATE without one. */
int amp_rpc_getinfo(const amp_rpc_env_t *env, amp_admin_info_t *out);

/* amp_rpc_metrics_text renders the exposition (getinfo's version and uptime
 * when that op exists). Returns malloc'd text or NULL (*rc says why). */
char *amp_rpc_metrics_text(const amp_rpc_env_t *env, size_t *len, int *rc);

#endif /* AMP_RPC_H */
