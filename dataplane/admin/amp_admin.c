/* amp_admin.c: the admin socket server and the metrics HTTP listener, on one
 * control thread with epoll. Connections are non-blocking; each is read a
 * chunk at a time and its complete lines are answered a few at a time, so no
 * client can hold the thread: a slow or hostile client costs others at most
 * one op call and one 64 KiB read. */
#include "amp_admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "amp_rpc.h"

#define READ_CHUNK 65536
#define LINES_PER_ROUND 16     /* complete lines answered per client per round */
#define ACCEPTS_PER_ROUND 256
#define MAX_EVENTS 128

enum { K_UNIX_LISTEN, K_HTTP_LISTEN, K_EVENT, K_RPC, K_HTTP };

typedef struct conn {
  int kind;
  int fd;
  int dead;                    /* closed; freed at the end of the round */
  int closing;                 /* close once out is flushed; read no more */
  int ready;                   /* on the ready list: complete lines to answer */
  int eof;                     /* the client shut down its side: answer, then close */
  uint32_t events;             /* epoll mask now */
  char *in;
  size_t in_start, in_len, in_cap;
  char *out;
  size_t out_off, out_len, out_cap;
  uint64_t last_ms;            /* last progress either way */
  struct conn *prev, *next;    /* all live connections */
  struct conn *rnext;          /* ready list */
  struct conn *dnext;          /* dead list */
} conn_t;

struct amp_admin {
  amp_admin_cfg_t cfg;
  char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char metrics_addr[64];
  amp_admin_ops_t ops;
  void *ctx;
  pthread_mutex_t lock;        /* serializes op calls (admin thread, telemetry) */
  pthread_t thread;
  int thread_started;
  int epfd, evfd, spare_fd;
  conn_t unix_listen, http_listen, event;
  dev_t sock_dev;
  ino_t sock_ino;
  int http_port;
  conn_t *conns;
  uint32_t n_conns;
  conn_t *ready_head, *ready_tail;
  conn_t *dead;
  uint64_t next_sweep;
  int stopping;
  /* The server's own counters (admin thread writes, any thread reads). */
  _Atomic uint64_t n_requests, n_errors, n_http, n_too_many, n_too_large, n_timeout;
  _Atomic uint32_t n_open;
};

static _Thread_local char admin_err[512];

const char *amp_admin_error(void) { return admin_err; }

__attribute__((format(printf, 1, 2)))
static void set_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(admin_err, sizeof admin_err, fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 3, 4)))
static void alog(amp_admin_t *a, int level, const char *fmt, ...) {
  if (!a->cfg.log) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  a->cfg.log(a->cfg.log_ctx, level, msg);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n--) *v++ = 0;
}

/* ---- the server's own numbers ---- */

#define OWN_COUNTERS 6
#define OWN_GAUGES 1

static void own_env(amp_admin_t *a, amp_rpc_env_t *env, amp_metrics_counter_t *c,
                    amp_metrics_gauge_t *g) {
  static const char *const closed_help = "admin connections closed by ampd, by reason";
  amp_metrics_counter_t cs[OWN_COUNTERS] = {
    {"admin_requests", "admin requests answered (socket and in-process)", NULL, NULL, NULL,
     atomic_load_explicit(&a->n_requests, memory_order_relaxed)},
    {"admin_request_errors", "admin requests answered with an error", NULL, NULL, NULL,
     atomic_load_explicit(&a->n_errors, memory_order_relaxed)},
    {"admin_http_requests", "HTTP requests on the metrics port", NULL, NULL, NULL,
     atomic_load_explicit(&a->n_http, memory_order_relaxed)},
    {"admin_connections_closed", closed_help, "reason", "too_many_clients", NULL,
     atomic_load_explicit(&a->n_too_many, memory_order_relaxed)},
    {"admin_connections_closed", closed_help, "reason", "request_too_large", NULL,
     atomic_load_explicit(&a->n_too_large, memory_order_relaxed)},
    {"admin_connections_closed", closed_help, "reason", "idle_timeout", NULL,
     atomic_load_explicit(&a->n_timeout, memory_order_relaxed)},
  };
  memcpy(c, cs, sizeof cs);
  g[0] = (amp_metrics_gauge_t){"admin_clients", "admin and metrics connections open now", NULL, NULL,
                               (double)atomic_load_explicit(&a->n_open, memory_order_relaxed)};
  env->ops = &a->ops;
  env->ctx = a->ctx;
  env->own_counters = c;
  env->n_own_counters = OWN_COUNTERS;
  env->own_gauges = g;
  env->n_own_gauges = OWN_GAUGES;
}

static void count(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

/* ---- public calls that run ops from any thread ---- */

char *amp_admin_call(amp_admin_t *a, const char *req, size_t len) {
  amp_rpc_env_t env;
  amp_metrics_counter_t c[OWN_COUNTERS];
  amp_metrics_gauge_t g[OWN_GAUGES];
  int code = 0;
  pthread_mutex_lock(&a->lock);
  own_env(a, &env, c, g);
  char *line = amp_rpc_handle(&env, req, len, &code);
  pthread_mutex_unlock(&a->lock);
  count(&a->n_requests);
  if (code) count(&a->n_errors);
  return line;
}

char *amp_admin_metrics_text(amp_admin_t *a, size_t *len) {
  amp_rpc_env_t env;
  amp_metrics_counter_t c[OWN_COUNTERS];
  amp_metrics_gauge_t g[OWN_GAUGES];
  int rc;
  pthread_mutex_lock(&a->lock);
  own_env(a, &env, c, g);
  char *text = amp_rpc_metrics_text(&env, len, &rc);
  pthread_mutex_unlock(&a->lock);
  return text;
}

int amp_admin_with_stats(amp_admin_t *a, void (*fn)(void *arg, const amp_metrics_stats_t *st),
                         void *arg) {
  amp_rpc_env_t env;
  amp_metrics_counter_t c[OWN_COUNTERS];
  amp_metrics_gauge_t g[OWN_GAUGES];
  pthread_mutex_lock(&a->lock);
  own_env(a, &env, c, g);
  int rc = amp_rpc_with_stats(&env, fn, arg);
  pthread_mutex_unlock(&a->lock);
  return rc;
}

int amp_admin_with_info(amp_admin_t *a, amp_admin_info_t *out) {
  amp_rpc_env_t env;
  amp_metrics_counter_t c[OWN_COUNTERS];
  amp_metrics_gauge_t g[OWN_GAUGES];
  pthread_mutex_lock(&a->lock);
  own_env(a, &env, c, g);
  int rc = amp_rpc_getinfo(&env, out);
  pthread_mutex_unlock(&a->lock);
  return rc;
}

const char *amp_admin_socket_path(const amp_admin_t *a) { return a->sock_path; }

int amp_admin_metrics_port(const amp_admin_t *a) { return a->http_port; }

/* ---- connections ---- */

static uint64_t deadline(const amp_admin_t *a, const conn_t *c) {
  if (c->out_len > c->out_off || (c->in_len > c->in_start && !c->ready) || c->kind == K_HTTP)
    return c->last_ms + a->cfg.idle_timeout_ms;
  if (c->ready) return UINT64_MAX;   /* we owe it work, not the other way round */
  if (a->cfg.quiet_timeout_ms == UINT32_MAX) return UINT64_MAX;
  return c->last_ms + a->cfg.quiet_timeout_ms;
}

static void touch(amp_admin_t *a, conn_t *c) {
  c->last_ms = now_ms();
  uint64_t d = deadline(a, c);
  if (d < a->next_sweep) a->next_sweep = d;
}

static void set_events(amp_admin_t *a, conn_t *c, uint32_t ev) {
  if (c->dead || c->events == ev) return;
  struct epoll_event e = {.events = ev, .data.ptr = c};
  if (epoll_ctl(a->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0) c->events = ev;
}

static void ready_remove(amp_admin_t *a, conn_t *c) {
  conn_t *prev = NULL;
  for (conn_t *r = a->ready_head; r; prev = r, r = r->rnext) {
    if (r != c) continue;
    if (prev) prev->rnext = r->rnext;
    else a->ready_head = r->rnext;
    if (a->ready_tail == r) a->ready_tail = prev;
    break;
  }
  c->ready = 0;
}

static void conn_close(amp_admin_t *a, conn_t *c) {
  if (c->dead) return;
  if (c->ready) ready_remove(a, c);
  epoll_ctl(a->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  c->dead = 1;
  if (c->prev) c->prev->next = c->next;
  else a->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  a->n_conns--;
  atomic_store_explicit(&a->n_open, a->n_conns, memory_order_relaxed);
  c->dnext = a->dead;
  a->dead = c;
}

static void conn_free(conn_t *c) {
  if (c->in) wipe(c->in, c->in_cap);
  free(c->in);
  free(c->out);
  free(c);
}

/* Queues bytes for the client. Returns 0, or -1 when out of memory (the
 * connection is then closed). */
static int queue_out(amp_admin_t *a, conn_t *c, const char *p, size_t n) {
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  if (c->out_len + n > c->out_cap) {
    if (c->out_off) {
      memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
      c->out_len -= c->out_off;
      c->out_off = 0;
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    char *q = realloc(c->out, cap);
    if (!q) { conn_close(a, c); return -1; }
    c->out = q;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

static int queue_line(amp_admin_t *a, conn_t *c, char *line) {
  static const char oom_line[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
                                 "\"message\":\"internal error: out of memory\"}}";
  int rc = line ? queue_out(a, c, line, strlen(line)) : queue_out(a, c, oom_line, sizeof oom_line - 1);
  free(line);
  if (rc == 0) rc = queue_out(a, c, "\n", 1);
  return rc;
}

static int has_line(const conn_t *c) {
  return c->in_len > c->in_start && memchr(c->in + c->in_start, '\n', c->in_len - c->in_start);
}

static void ready_push(amp_admin_t *a, conn_t *c) {
  if (c->ready) return;
  c->ready = 1;
  c->rnext = NULL;
  if (a->ready_tail) a->ready_tail->rnext = c;
  else a->ready_head = c;
  a->ready_tail = c;
}

/* What the connection should wait for now. */
static void rearm(amp_admin_t *a, conn_t *c) {
  if (c->dead) return;
  if (c->out_len > c->out_off) set_events(a, c, EPOLLOUT);
  else if (c->closing || (c->eof && !has_line(c))) conn_close(a, c);
  else if (c->ready || (c->kind == K_RPC && has_line(c))) { set_events(a, c, 0); ready_push(a, c); }
  else set_events(a, c, EPOLLIN);
}

/* Sends what is queued, without blocking. */
static void flush(amp_admin_t *a, conn_t *c) {
  int progressed = 0;
  while (!c->dead && c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) { c->out_off += (size_t)n; progressed = 1; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    conn_close(a, c);   /* the client went away */
    return;
  }
  if (progressed) touch(a, c);
  rearm(a, c);
}

/* Refuses a connection with one error line (best effort) and closes it. */
static void refuse_fd(int fd, int code, const char *msg) {
  char *line = amp_rpc_error_line(code, msg);
  if (line) {
    size_t n = strlen(line);
    line[n] = '\n';
    ssize_t w = send(fd, line, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    free(line);
  }
  close(fd);
}

static void refuse_conn(amp_admin_t *a, conn_t *c, int code, const char *msg) {
  char *line = amp_rpc_error_line(code, msg);
  c->closing = 1;
  set_events(a, c, 0);
  if (queue_line(a, c, line) == 0) flush(a, c);
}

/* Answers one complete line. Returns 0 to go on with the next one. */
static int answer_line(amp_admin_t *a, conn_t *c) {
  char *start = c->in + c->in_start;
  char *nl = memchr(start, '\n', c->in_len - c->in_start);
  size_t len = (size_t)(nl - start);
  c->in_start += len + 1;
  if (len > a->cfg.max_request) {
    wipe(start, len + 1);
    char msg[160];
    snprintf(msg, sizeof msg, "invalid request: a request line may be at most %zu bytes; closing",
             a->cfg.max_request);
    count(&a->n_too_large);
    alog(a, AMP_ADMIN_LOG_NOTICE, "admin: closed a client: request line over %zu bytes",
         a->cfg.max_request);
    refuse_conn(a, c, AMP_ADMIN_ERR_INVALID_REQUEST, msg);
    return -1;
  }
  size_t l = len;
  if (l && start[l - 1] == '\r') l--;
  size_t k = 0;
  while (k < l && (start[k] == ' ' || start[k] == '\t')) k++;
  if (k == l) return 0;   /* a blank line: nothing to answer */
  char *line = amp_admin_call(a, start, l);
  wipe(start, len + 1);   /* requests may carry a preimage */
  if (queue_line(a, c, line) != 0) return -1;
  return 0;
}

/* Answers up to LINES_PER_ROUND lines of a ready client. */
static void serve_ready(amp_admin_t *a, conn_t *c) {
  c->ready = 0;
  for (int i = 0; i < LINES_PER_ROUND && !c->dead && !c->closing; i++) {
    if (!has_line(c)) break;
    if (answer_line(a, c) != 0) break;
    if (c->dead) return;
    if (c->out_len > c->out_off) {
      flush(a, c);
      if (c->dead || c->out_len > c->out_off) return;   /* wait until it reads */
    }
  }
  if (c->dead) return;
  if (c->in_start == c->in_len) c->in_start = c->in_len = 0;
  rearm(a, c);
  if (!c->dead) touch(a, c);
}

static void read_rpc(amp_admin_t *a, conn_t *c) {
  size_t max = a->cfg.max_request;
  /* Keep at most max + 1 bytes of one unfinished line. */
  if (c->in_start) {
    memmove(c->in, c->in + c->in_start, c->in_len - c->in_start);
    c->in_len -= c->in_start;
    c->in_start = 0;
  }
  size_t room = max + 1 - c->in_len;
  if (room > READ_CHUNK) room = READ_CHUNK;
  if (c->in_len + room > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < c->in_len + room) cap *= 2;
    if (cap > max + 1 + READ_CHUNK) cap = max + 1 + READ_CHUNK;
    char *p = realloc(c->in, cap);
    if (!p) { conn_close(a, c); return; }
    c->in = p;
    c->in_cap = cap;
  }
  ssize_t n = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n == 0 && c->in_len > c->in_start && c->in_len < c->in_cap) {
    /* The client shut down its side after an unterminated request: that is
     * its last line. Answer it, then close. */
    c->in[c->in_len++] = '\n';
    c->eof = 1;
    set_events(a, c, 0);
    ready_push(a, c);
    return;
  }
  if (n <= 0) {   /* end of stream or an error: answer nothing more */
    conn_close(a, c);
    return;
  }
  size_t old = c->in_len;
  c->in_len += (size_t)n;
  touch(a, c);
  if (memchr(c->in + old, '\n', (size_t)n)) {
    set_events(a, c, 0);
    ready_push(a, c);
    return;
  }
  if (c->in_len > max) {
    wipe(c->in, c->in_len);
    c->in_start = c->in_len = 0;
    char msg[160];
    snprintf(msg, sizeof msg, "invalid request: a request line may be at most %zu bytes; closing", max);
    count(&a->n_too_large);
    alog(a, AMP_ADMIN_LOG_NOTICE, "admin: closed a client: request line over %zu bytes", max);
    refuse_conn(a, c, AMP_ADMIN_ERR_INVALID_REQUEST, msg);
  }
}

static void read_http(amp_admin_t *a, conn_t *c) {
  if (!c->in) {
    c->in = malloc(AMP_METRICS_HTTP_MAX);
    if (!c->in) { conn_close(a, c); return; }
    c->in_cap = AMP_METRICS_HTTP_MAX;
  }
  ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) { conn_close(a, c); return; }
  c->in_len += (size_t)n;
  touch(a, c);
  int head_only = 0;
  int status = amp_metrics_http_parse(c->in, c->in_len, &head_only);
  if (status == 0) return;
  count(&a->n_http);
  char *body = NULL;
  size_t body_len = 0;
  if (status == 200) body = amp_admin_metrics_text(a, &body_len);
  size_t len = 0;
  char *resp = amp_metrics_http_response(status, head_only, body, body_len, &len);
  free(body);
  c->closing = 1;
  shutdown(c->fd, SHUT_RD);
  if (!resp || queue_out(a, c, resp, len) != 0) {
    free(resp);
    if (!c->dead) conn_close(a, c);
    return;
  }
  free(resp);
  flush(a, c);
}

static void add_conn(amp_admin_t *a, int fd, int kind) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) { close(fd); return; }
  c->kind = kind;
  c->fd = fd;
  c->events = EPOLLIN;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &e) != 0) { close(fd); free(c); return; }
  c->next = a->conns;
  if (a->conns) a->conns->prev = c;
  a->conns = c;
  a->n_conns++;
  atomic_store_explicit(&a->n_open, a->n_conns, memory_order_relaxed);
  touch(a, c);
}

static void accept_all(amp_admin_t *a, conn_t *l) {
  int kind = l->kind == K_UNIX_LISTEN ? K_RPC : K_HTTP;
  for (int i = 0; i < ACCEPTS_PER_ROUND; i++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && a->spare_fd >= 0) {
        /* Out of descriptors: use the spare one to take the client off the
         * queue and tell it, rather than spin on a listener that stays readable. */
        close(a->spare_fd);
        a->spare_fd = -1;
        fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
          count(&a->n_too_many);
          if (kind == K_RPC) refuse_fd(fd, AMP_ADMIN_ERR_TOO_MANY_CLIENTS,
                                       "too many admin clients: ampd is out of file descriptors");
          else close(fd);
        }
        a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        alog(a, AMP_ADMIN_LOG_WARNING, "admin: out of file descriptors; refused a client");
      }
      return;
    }
    if (a->n_conns >= a->cfg.max_clients) {
      count(&a->n_too_many);
      if (kind == K_RPC) {
        char msg[128];
        snprintf(msg, sizeof msg, "too many admin clients (limit %" PRIu32 "); try again later",
                 a->cfg.max_clients);
        refuse_fd(fd, AMP_ADMIN_ERR_TOO_MANY_CLIENTS, msg);
      } else {
        close(fd);
      }
      continue;
    }
    add_conn(a, fd, kind);
  }
}

static void sweep(amp_admin_t *a, uint64_t now) {
  uint64_t next = now + 1000;
  for (conn_t *c = a->conns, *n; c; c = n) {
    n = c->next;
    uint64_t d = deadline(a, c);
    if (d <= now) {
      count(&a->n_timeout);
      if (c->kind == K_RPC && c->in_len > c->in_start && c->out_len == c->out_off) {
        char msg[160];
        snprintf(msg, sizeof msg, "invalid request: incomplete request line and no byte for %" PRIu32
                 " ms; closing", a->cfg.idle_timeout_ms);
        char *line = amp_rpc_error_line(AMP_ADMIN_ERR_INVALID_REQUEST, msg);
        if (line) {
          size_t len = strlen(line);
          line[len] = '\n';
          ssize_t w = send(c->fd, line, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          (void)w;
          free(line);
        }
      }
      alog(a, AMP_ADMIN_LOG_INFO, "admin: closed an idle client");
      conn_close(a, c);
      continue;
    }
    if (d < next) next = d;
  }
  a->next_sweep = next;
}

static void *run(void *arg) {
  amp_admin_t *a = arg;
  struct epoll_event ev[MAX_EVENTS];
  while (!a->stopping) {
    uint64_t now = now_ms();
    int timeout = 0;
    if (!a->ready_head)
      timeout = a->next_sweep > now ? (int)(a->next_sweep - now > 1000 ? 1000 : a->next_sweep - now) : 0;
    int n = epoll_wait(a->epfd, ev, MAX_EVENTS, timeout);
    if (n < 0 && errno != EINTR) {
      alog(a, AMP_ADMIN_LOG_ERR, "admin: epoll_wait failed: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      conn_t *c = ev[i].data.ptr;
      if (c->dead) continue;
      switch (c->kind) {
      case K_EVENT: {
        uint64_t v;
        ssize_t r = read(c->fd, &v, sizeof v);
        (void)r;
        a->stopping = 1;
        break;
      }
      case K_UNIX_LISTEN:
      case K_HTTP_LISTEN:
        accept_all(a, c);
        break;
      default:
        if (ev[i].events & EPOLLOUT) flush(a, c);
        if (c->dead) break;
        if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          if (c->events & EPOLLIN) {
            if (c->kind == K_RPC) read_rpc(a, c);
            else read_http(a, c);
          } else if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
            conn_close(a, c);
          }
        }
        break;
      }
    }
    /* One round over the clients with answers due. */
    conn_t *list = a->ready_head;
    a->ready_head = a->ready_tail = NULL;
    while (list) {
      conn_t *c = list;
      list = c->rnext;
      if (!c->dead) serve_ready(a, c);
    }
    now = now_ms();
    if (now >= a->next_sweep) sweep(a, now);
    while (a->dead) {
      conn_t *c = a->dead;
      a->dead = c->dnext;
      conn_free(c);
    }
  }
  /* Stopping: one last chance for queued replies (the reply to `stop`). */
  for (conn_t *c = a->conns; c; c = c->next)
    if (c->out_len > c->out_off) {
      ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)w;
    }
  return NULL;
}

/* ---- sockets ---- */

static int unix_addr(struct sockaddr_un *sa, const char *path) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa->sun_path) return -1;
  strcpy(sa->sun_path, path);
  return 0;
}

static int open_unix(amp_admin_t *a) {
  const char *path = a->sock_path;
  struct sockaddr_un sa;
  struct stat st;
  unix_addr(&sa, path);
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      set_err("admin socket %s: the path exists and is not a socket; ampd will not remove it "
              "(move it away or choose another admin socket path)", path);
      return -1;
    }
    int p = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p < 0) { set_err("admin socket %s: socket: %s", path, strerror(errno)); return -1; }
    int r = connect(p, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(p);
    if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
      set_err("admin socket %s: another process is serving it (is ampd already running with "
              "this data directory?)", path);
      return -1;
    }
    if (e != ECONNREFUSED) {
      set_err("admin socket %s: the path exists and cannot be checked (%s); ampd will not remove it",
              path, strerror(e));
      return -1;
    }
    if (unlink(path) != 0) {
      set_err("admin socket %s: cannot remove the stale socket: %s", path, strerror(errno));
      return -1;
    }
    alog(a, AMP_ADMIN_LOG_NOTICE, "admin: removed the stale socket %s", path);
  } else if (errno != ENOENT) {
    set_err("admin socket %s: %s", path, strerror(errno));
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { set_err("admin socket %s: socket: %s", path, strerror(errno)); return -1; }
  mode_t old = umask(0177);
  int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  umask(old);
  if (r != 0) {
    set_err("admin socket %s: bind: %s", path, strerror(e));
    close(fd);
    return -1;
  }
  if (chmod(path, 0600) != 0 || lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) ||
      st.st_uid != geteuid() || (st.st_mode & 07777) != 0600) {
    set_err("admin socket %s: cannot make it a socket of ours with mode 0600", path);
    unlink(path);
    close(fd);
    return -1;
  }
  a->sock_dev = st.st_dev;
  a->sock_ino = st.st_ino;
  int backlog = a->cfg.max_clients < 128 ? 128 : (int)(a->cfg.max_clients > 65535 ? 65535 : a->cfg.max_clients);
  if (listen(fd, backlog) != 0) {
    set_err("admin socket %s: listen: %s", path, strerror(errno));
    unlink(path);
    close(fd);
    return -1;
  }
  return fd;
}

static int open_http(amp_admin_t *a) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  char port[8];
  snprintf(port, sizeof port, "%d", a->cfg.metrics_port == AMP_ADMIN_METRICS_ANY_PORT ? 0 : a->cfg.metrics_port);
  int r = getaddrinfo(a->metrics_addr, port, &hints, &res);
  if (r != 0 || !res) {
    set_err("metrics address %s: not an IP address (%s)", a->metrics_addr, gai_strerror(r));
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    set_err("metrics port: socket: %s", strerror(errno));
    freeaddrinfo(res);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    set_err("metrics port %s:%s: %s", a->metrics_addr, port, strerror(errno));
    freeaddrinfo(res);
    close(fd);
    return -1;
  }
  freeaddrinfo(res);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
    a->http_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static int watch(amp_admin_t *a, conn_t *c, int kind, int fd) {
  c->kind = kind;
  c->fd = fd;
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
  return epoll_ctl(a->epfd, EPOLL_CTL_ADD, fd, &e);
}

static void close_all(amp_admin_t *a) {
  while (a->conns) conn_close(a, a->conns);
  while (a->dead) {
    conn_t *c = a->dead;
    a->dead = c->dnext;
    conn_free(c);
  }
  if (a->unix_listen.fd >= 0) {
    close(a->unix_listen.fd);
    struct stat st;
    if (lstat(a->sock_path, &st) == 0 && st.st_dev == a->sock_dev && st.st_ino == a->sock_ino)
      unlink(a->sock_path);
  }
  if (a->http_listen.fd >= 0) close(a->http_listen.fd);
  if (a->evfd >= 0) close(a->evfd);
  if (a->epfd >= 0) close(a->epfd);
  if (a->spare_fd >= 0) close(a->spare_fd);
}

amp_admin_t *amp_admin_new(const amp_admin_cfg_t *cfg, const amp_admin_ops_t *ops, void *ops_ctx) {
  admin_err[0] = 0;
  if (!cfg || !ops) { set_err("admin: no configuration or no ops"); return NULL; }
  amp_admin_t *a = calloc(1, sizeof *a);
  if (!a) { set_err("admin: out of memory"); return NULL; }
  a->cfg = *cfg;
  a->cfg.data_dir = a->cfg.socket_path = a->cfg.metrics_addr = NULL;
  a->ops = *ops;
  a->ctx = ops_ctx;
  a->epfd = a->evfd = a->spare_fd = -1;
  a->unix_listen.fd = a->http_listen.fd = a->event.fd = -1;
  if (!a->cfg.max_request) a->cfg.max_request = AMP_ADMIN_MAX_REQUEST_DEFAULT;
  if (!a->cfg.max_clients) a->cfg.max_clients = AMP_ADMIN_MAX_CLIENTS_DEFAULT;
  if (!a->cfg.idle_timeout_ms) a->cfg.idle_timeout_ms = AMP_ADMIN_IDLE_TIMEOUT_DEFAULT_MS;
  if (!a->cfg.quiet_timeout_ms) a->cfg.quiet_timeout_ms = AMP_ADMIN_QUIET_TIMEOUT_DEFAULT_MS;
  snprintf(a->metrics_addr, sizeof a->metrics_addr, "%s", cfg->metrics_addr ? cfg->metrics_addr : "127.0.0.1");
  pthread_mutex_init(&a->lock, NULL);
  int n;
  if (cfg->socket_path)
    n = snprintf(a->sock_path, sizeof a->sock_path, "%s", cfg->socket_path);
  else if (cfg->data_dir)
    n = snprintf(a->sock_path, sizeof a->sock_path, "%s/%s", cfg->data_dir, AMP_ADMIN_SOCKET_NAME);
  else {
    set_err("admin: neither a socket path nor a data directory");
    goto fail;
  }
  if (n < 0 || (size_t)n >= sizeof a->sock_path) {
    set_err("admin socket path too long (%d bytes; a Unix socket path has at most %zu)", n,
            sizeof a->sock_path - 1);
    goto fail;
  }
  if (cfg->metrics_port < AMP_ADMIN_METRICS_ANY_PORT || cfg->metrics_port > 65535) {
    set_err("metrics port %d: expected 1 to 65535 (0: off)", cfg->metrics_port);
    goto fail;
  }
  a->epfd = epoll_create1(EPOLL_CLOEXEC);
  a->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (a->epfd < 0 || a->evfd < 0) { set_err("admin: epoll/eventfd: %s", strerror(errno)); goto fail; }
  if ((a->unix_listen.fd = open_unix(a)) < 0) goto fail;
  if (cfg->metrics_port && (a->http_listen.fd = open_http(a)) < 0) goto fail;
  if (watch(a, &a->unix_listen, K_UNIX_LISTEN, a->unix_listen.fd) != 0 ||
      watch(a, &a->event, K_EVENT, a->evfd) != 0 ||
      (a->http_listen.fd >= 0 && watch(a, &a->http_listen, K_HTTP_LISTEN, a->http_listen.fd) != 0)) {
    set_err("admin: epoll_ctl: %s", strerror(errno));
    goto fail;
  }
  a->event.fd = a->evfd;
  a->next_sweep = now_ms() + 1000;
  /* The thread takes no signals: the daemon's main thread handles them. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int r = pthread_create(&a->thread, NULL, run, a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (r != 0) { set_err("admin: cannot start its thread: %s", strerror(r)); goto fail; }
  pthread_setname_np(a->thread, "ampd-admin");
  a->thread_started = 1;
  alog(a, AMP_ADMIN_LOG_INFO, "admin: serving %s%s", a->sock_path, a->http_listen.fd >= 0 ? " and metrics" : "");
  return a;
fail:
  close_all(a);
  pthread_mutex_destroy(&a->lock);
  free(a);
  return NULL;
}

void amp_admin_delete(amp_admin_t *a) {
  if (!a) return;
  if (a->thread_started) {
    uint64_t one = 1;
    ssize_t w = write(a->evfd, &one, sizeof one);
    (void)w;
    pthread_join(a->thread, NULL);
  }
  close_all(a);
  pthread_mutex_destroy(&a->lock);
  free(a);
}
