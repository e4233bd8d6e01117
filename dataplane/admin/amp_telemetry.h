/* amp_telemetry.h: ampd's counters as DPDK telemetry commands, so
 * dpdk-telemetry.py shows them beside the ethdev counters.
 *
 *   /ampd/stats          counter totals (labelled ones as name/label_value),
 *                        gauges, and per histogram name/count and name/sum_ns
 *   /ampd/stats,N        the per-worker counters of worker N
 *   /ampd/info           version, node_id, block_height, uptime_s, workers,
 *                        ports, data_dir
 *
 * Built only with DPDK (telemetry_dep). The callbacks run on DPDK's telemetry
 * thread and reach the daemon through the admin server's ops, under its ops
 * lock, so they never run concurrently with an admin request.
 * Dictionary keys keep [A-Za-z0-9_/] only (DPDK's rule); other characters of
 * a label value become '_'. At most 256 entries per reply (DPDK's limit).
 */
#ifndef AMP_TELEMETRY_H
#define AMP_TELEMETRY_H

#include "amp_admin.h"

/* amp_admin_telemetry_register registers the commands for admin. Call once,
 * after rte_eal_init (commands registered before it work too) and after
 * amp_admin_new; a second call only switches the server they read.
 * Returns 0, or a negative errno from rte_telemetry_register_cmd. */
int amp_admin_telemetry_register(amp_admin_t *admin);

/* amp_admin_telemetry_unregister detaches the commands from the server (they
 * answer with an error from then on; DPDK cannot remove a command). Call it
 * before amp_admin_delete. Waits for a callback in flight. */
void amp_admin_telemetry_unregister(void);

#endif /* AMP_TELEMETRY_H */
