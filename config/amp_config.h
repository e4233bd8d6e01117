/* amp_config.h: ampd's options, from an INI-style file (libinih) and flags.
 *
 * One table of options (amp_config.c) drives the file, the flags, the
 * defaults and `ampd --help`, so they can never disagree. Flags win over the
 * file. Top-level `name = value` lines (or a section [ampd]) set options;
 * each `[gateway NAME]` section declares one gateway of the fabric:
 *
 *   data-dir = /var/lib/ampd
 *   accept-amp = true
 *   [gateway gw1]
 *   id = 1
 *   key = 0123...(64 hex digits)...
 *   mac = 02:00:00:00:00:02
 *   ipv4 = 10.0.0.2
 *   udp-port = 9736
 *
 * On the command line the same gateway is
 *   --gateway gw1,id=1,key=<hex>,mac=02:00:00:00:00:02,ipv4=10.0.0.2,udp-port=9736
 * and replaces a file section of the same NAME.
 *
 * Every bad value is an error that names where it came from (file and line,
 * or the flag), the option, and what is expected; the caller prints it and
 * exits before touching the store. Secrets (gateway keys, the node key) are
 * never echoed in errors or dumps.
 *
 * Not thread-safe (libinih's switches are process globals): parse once at
 * start, then share the result read-only.
 */
#ifndef AMP_CONFIG_H
#define AMP_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "amp_util.h"

#define AMP_CONFIG_PATH_MAX 512
#define AMP_CONFIG_MAX_GATEWAYS 64
#define AMP_CONFIG_MAX_PORTS 32
#define AMP_CONFIG_NAME_MAX 32
#define AMP_CONFIG_ERR_MAX 512    /* a good size for the err buffers below */

/* Durability of the store (values equal amp_store_sync_t). */
typedef enum {
  AMP_CONFIG_SYNC_FULL = 0,
  AMP_CONFIG_SYNC_META = 1,
  AMP_CONFIG_SYNC_NONE = 2,
} amp_config_sync_t;

typedef enum {
  AMP_LOG_ERROR = 0,
  AMP_LOG_WARN = 1,
  AMP_LOG_INFO = 2,
  AMP_LOG_DEBUG = 3,
} amp_config_log_t;

/* One gateway of the fabric. */
typedef struct {
  char name[AMP_CONFIG_NAME_MAX];
  uint64_t id;
  uint8_t key[32];              /* a secret */
  uint8_t mac[6];
  uint8_t ipv4[4];
  uint16_t udp_port;            /* the gateway's own port; default 9736 */
  uint8_t has_id, has_key, has_mac, has_ipv4;
  char origin[AMP_CONFIG_PATH_MAX + 32]; /* "file:line" or "--gateway" */
} amp_config_gateway_t;

typedef struct {
  char config_file[AMP_CONFIG_PATH_MAX];   /* "" when none */
  char data_dir[AMP_CONFIG_PATH_MAX];
  char node_key_file[AMP_CONFIG_PATH_MAX]; /* default <data-dir>/node.key */
  uint8_t accept_amp;
  uint32_t hold_timeout_ms;
  uint32_t max_htlcs_per_set;
  uint32_t max_held;
  uint32_t max_held_per_gateway;           /* 0 after parse never: resolved */
  uint32_t group_commit_max;
  uint32_t group_commit_usec;
  uint32_t store_index_entries;            /* amp_store_cfg_t.filter_entries */
  uint8_t sync;                            /* amp_config_sync_t */
  uint32_t workers;                        /* 0: every worker lcore */
  uint16_t n_ports;                        /* 0: every port DPDK found */
  uint16_t ports[AMP_CONFIG_MAX_PORTS];
  uint16_t rx_queues;                      /* per port; 0: one per worker if RSS */
  uint16_t rx_desc, tx_desc;
  uint32_t mbufs;                          /* mbufs per pool; 0: sized from the above */
  uint8_t mac[6], has_mac;                 /* our MAC; default the port's */
  uint8_t ipv4[4], has_ipv4;               /* our IPv4; default accept any */
  uint16_t udp_port;                       /* where ampd listens; 9736 */
  uint32_t exit_idle_ms;                   /* 0: never */
  uint8_t log_level;                       /* amp_config_log_t */
  uint32_t stats_interval_ms;              /* 0: no periodic line */
  char admin_socket[AMP_CONFIG_PATH_MAX];  /* default <data-dir>/ampd.sock; "none": off */
  uint16_t metrics_port;                   /* HTTP /metrics; 0: off */
  char metrics_addr[64];                   /* an IPv4 or IPv6 literal; 127.0.0.1 */
  uint8_t help;                            /* --help was given */
  unsigned n_gateways;
  amp_config_gateway_t gateways[AMP_CONFIG_MAX_GATEWAYS];
} amp_config_t;

/* amp_config_defaults fills cfg with every default (as `--help` lists them). */
void amp_config_defaults(amp_config_t *cfg);

/* amp_config_parse: defaults, then the file named by --config (if any), then
 * the flags in argv[1..argc-1] (argv[0] is the program name and is skipped),
 * then the checks that span options (every gateway has an id and a key, ids
 * and names unique, limits consistent). Sets cfg->help on --help / -h and
 * stops there (cfg is then only defaults).
 * Returns AMP_OK, or AMP_ERR_CONFIG with a one-line message in err (capacity
 * errlen; AMP_CONFIG_ERR_MAX is enough) that names the file and line or the
 * flag, the option and what is expected. Never echoes a key. */
AMP_WARN_UNUSED int amp_config_parse(amp_config_t *cfg, int argc, char **argv, char *err,
                                     size_t errlen);

/* amp_config_load_file applies one INI file to cfg (over what is there).
 * Returns AMP_OK or AMP_ERR_CONFIG (err as above; an unreadable file is an
 * error naming the file and errno's text). */
AMP_WARN_UNUSED int amp_config_load_file(amp_config_t *cfg, const char *path, char *err,
                                         size_t errlen);

/* amp_config_set sets one option by name, as a flag would (gateways: use the
 * "gateway" name with the --gateway syntax). origin names the source for
 * errors ("--name" is used when NULL). Returns AMP_OK or AMP_ERR_CONFIG. */
AMP_WARN_UNUSED int amp_config_set(amp_config_t *cfg, const char *name, const char *value,
                                   const char *origin, char *err, size_t errlen);

/* amp_config_finish resolves defaults that depend on other options and runs
 * the checks that span options. amp_config_parse calls it; a caller who uses
 * load_file / set directly calls it last. Returns AMP_OK or AMP_ERR_CONFIG. */
AMP_WARN_UNUSED int amp_config_finish(amp_config_t *cfg, char *err, size_t errlen);

/* amp_config_usage prints every option with its flag form, what it takes,
 * its default and what it does. */
void amp_config_usage(FILE *out, const char *prog);

/* amp_config_dump prints the effective configuration, one option a line,
 * gateway keys shown as "(set)". */
void amp_config_dump(FILE *out, const amp_config_t *cfg);

/* amp_config_find_gateway returns the gateway with that id, or NULL. */
const amp_config_gateway_t *amp_config_find_gateway(const amp_config_t *cfg, uint64_t id);

/* amp_config_wipe zeroes every secret in cfg (the gateway keys). */
void amp_config_wipe(amp_config_t *cfg);

/* amp_config_node_key reads the node's secret key from path: 64 hex digits
 * (an optional trailing newline). If the file does not exist and create is
 * non-zero, makes a fresh valid key and writes it with mode 0600 (creating
 * the parent directory with mode 0700 if missing). Refuses a file that is not
 * a regular file, or that group or others may read or write (mode & 077), or
 * whose content is not a valid secp256k1 secret key.
 * key receives the key (a secret: the caller wipes it). *created is set to 1
 * when a new key was written (created may be NULL).
 * Returns AMP_OK, or AMP_ERR_CONFIG with err naming the file and the problem
 * (never the key). Requires amp_secp_init. */
AMP_WARN_UNUSED int amp_config_node_key(uint8_t key[32], int *created, const char *path,
                                        int create, char *err, size_t errlen);

/* Names for the enums (static strings). */
const char *amp_config_sync_str(int sync);
const char *amp_config_log_str(int level);

#endif /* AMP_CONFIG_H */
