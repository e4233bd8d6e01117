/* ports.c: port and queue setup (like l3fwd's main.c port loop).
 *
 * Per port: rx queues = --rx-queues, or one per worker when the port has RSS
 * (else one); tx queues = one per worker (shared under a lock when the port
 * has fewer). MTU 9000 where the port allows it. The mbuf pool has 2 kB data
 * rooms (a reply frame, or an update_add_htlc frame of ~1.5 kB, fits one);
 * jumbo frames arrive as mbuf chains on ports that scatter (and on net_pcap,
 * which chains them without the offload flag), and on ports that cannot
 * scatter rx uses a pool of 9 kB mbufs of its own.
 */
#include <dirent.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_lcore.h>
#include <rte_malloc.h>

#include "ampd.h"

#define POOL_CACHE 256
#define JUMBO_ROOM (AMP_FRAME_MAX_LEN + 64)   /* 9078: a 9014-byte frame fits */


static int port_ids(ampd_app_t *app) {
  const amp_config_t *cfg = &app->cfg;
  app->n_ports = 0;
  if (cfg->n_ports) {
    for (unsigned i = 0; i < cfg->n_ports; i++) {
      if (!rte_eth_dev_is_valid_port(cfg->ports[i])) {
        ampd_log(AMP_LOG_ERROR, "ports: port %u does not exist (DPDK found %u port(s))",
                 cfg->ports[i], rte_eth_dev_count_avail());
        return -1;
      }
      app->ports[app->n_ports++].port_id = cfg->ports[i];
    }
  } else {
    uint16_t pid;
    RTE_ETH_FOREACH_DEV(pid) {
      if (app->n_ports == AMP_CONFIG_MAX_PORTS) break;
      app->ports[app->n_ports++].port_id = pid;
    }
  }
  if (!app->n_ports) {
    ampd_log(AMP_LOG_ERROR, "no DPDK port: give one to EAL (e.g. --vdev net_pcap0,rx_pcap=in.pcap,"
             "tx_pcap=out.pcap, or a NIC bound to vfio-pci)");
    return -1;
  }
  return 0;
}

/* Plans queues, MTU and offloads for a port, and configures it. */
static int port_configure(ampd_app_t *app, ampd_port_t *p, uint16_t *nrxd, uint16_t *ntxd,
                          int *scatter) {
  const amp_config_t *cfg = &app->cfg;
  struct rte_eth_dev_info info;
  int rc = rte_eth_dev_info_get(p->port_id, &info);
  if (rc) {
    ampd_log(AMP_LOG_ERROR, "port %u: cannot read device info: %s", p->port_id, rte_strerror(-rc));
    return -1;
  }
  uint64_t rss_hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP);
  unsigned nrxq = cfg->rx_queues ? cfg->rx_queues : (rss_hf ? app->n_workers : 1);
  if (nrxq > info.max_rx_queues) nrxq = info.max_rx_queues;
  if (nrxq > AMPD_MAX_QUEUES) nrxq = AMPD_MAX_QUEUES;
  if (nrxq < 1) nrxq = 1;
  unsigned ntxq = app->n_workers;
  if (ntxq > info.max_tx_queues) ntxq = info.max_tx_queues;
  if (ntxq > AMPD_MAX_QUEUES) ntxq = AMPD_MAX_QUEUES;
  if (ntxq < 1) ntxq = 1;
  p->n_rxq = (uint16_t)nrxq;
  p->n_txq = (uint16_t)ntxq;
  p->txq_shared = ntxq < app->n_workers;
  for (unsigned q = 0; q < AMPD_MAX_QUEUES; q++) rte_spinlock_init(&p->txq_lock[q]);

  struct rte_eth_conf conf;
  memset(&conf, 0, sizeof conf);
  if (nrxq > 1 && rss_hf) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
  } else if (nrxq > 1) {
    ampd_log(AMP_LOG_WARN, "port %u (%s): %u rx queues but no RSS: the driver decides what"
             " reaches queues other than 0", p->port_id, info.driver_name, nrxq);
  }
  uint32_t mtu = AMP_FRAME_MTU;
  if (info.max_mtu && info.max_mtu < mtu) mtu = info.max_mtu;
  if (mtu >= info.min_mtu) conf.rxmode.mtu = mtu;
  *scatter = 0;
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    *scatter = 1;
  } else if (!strcmp(info.driver_name, "net_pcap")) {
    /* net_pcap chains a frame longer than an mbuf over several without
     * offering the offload: 2 kB mbufs suffice (and infinite_rx=1, which
     * keeps the whole file in mbufs of the rx pool, needs them small). */
    *scatter = 1;
  }
  rc = rte_eth_dev_configure(p->port_id, (uint16_t)nrxq, (uint16_t)ntxq, &conf);
  if (rc && conf.rxmode.mtu) {   /* some drivers refuse an MTU at configure */
    conf.rxmode.mtu = 0;
    rc = rte_eth_dev_configure(p->port_id, (uint16_t)nrxq, (uint16_t)ntxq, &conf);
  }
  if (rc) {
    ampd_log(AMP_LOG_ERROR, "port %u (%s): configure with %u rx / %u tx queues failed: %s",
             p->port_id, info.driver_name, nrxq, ntxq, rte_strerror(-rc));
    return -1;
  }
  *nrxd = cfg->rx_desc;
  *ntxd = cfg->tx_desc;
  rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, nrxd, ntxd);
  if (rc) {
    ampd_log(AMP_LOG_ERROR, "port %u: descriptor counts refused: %s", p->port_id,
             rte_strerror(-rc));
    return -1;
  }
  ampd_log(AMP_LOG_INFO, "port %u (%s): %u rx queue(s)%s, %u tx queue(s)%s, %u/%u descriptors,"
           " %s rx", p->port_id, info.driver_name, nrxq, nrxq > 1 && rss_hf ? " with RSS" : "",
           ntxq, p->txq_shared ? " shared by workers" : "", *nrxd, *ntxd,
           *scatter ? "scattered" : "jumbo-mbuf");
  return 0;
}

static int port_queues(ampd_app_t *app, ampd_port_t *p, uint16_t nrxd, uint16_t ntxd,
                       int scatter) {
  int socket = rte_eth_dev_socket_id(p->port_id);
  if (socket < 0) socket = (int)rte_socket_id();
  struct rte_eth_dev_info info;
  if (rte_eth_dev_info_get(p->port_id, &info)) return -1;
  p->rx_pool = app->pool;
  if (!scatter) {
    char name[RTE_MEMPOOL_NAMESIZE];
    snprintf(name, sizeof name, "ampd_jumbo_%u", p->port_id);
    unsigned n = p->n_rxq * nrxd + app->n_workers * AMPD_BURST + rte_lcore_count() * 32 + 256;
    p->rx_pool = rte_pktmbuf_pool_create(name, n, 32, 0,
                                         RTE_PKTMBUF_HEADROOM + JUMBO_ROOM, socket);
    if (!p->rx_pool) {
      ampd_log(AMP_LOG_ERROR, "port %u: cannot make a pool of %u jumbo mbufs: %s (give EAL"
               " more memory with -m)", p->port_id, n, rte_strerror(rte_errno));
      return -1;
    }
  }
  struct rte_eth_rxconf rxconf = info.default_rxconf;
  rxconf.offloads = info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER & (scatter ? ~0ull : 0);
  for (uint16_t q = 0; q < p->n_rxq; q++) {
    int rc = rte_eth_rx_queue_setup(p->port_id, q, nrxd, (unsigned)socket, &rxconf, p->rx_pool);
    if (rc) {
      ampd_log(AMP_LOG_ERROR, "port %u: rx queue %u setup failed: %s", p->port_id, q,
               rte_strerror(-rc));
      return -1;
    }
  }
  struct rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = 0;
  for (uint16_t q = 0; q < p->n_txq; q++) {
    int rc = rte_eth_tx_queue_setup(p->port_id, q, ntxd, (unsigned)socket, &txconf);
    if (rc) {
      ampd_log(AMP_LOG_ERROR, "port %u: tx queue %u setup failed: %s", p->port_id, q,
               rte_strerror(-rc));
      return -1;
    }
  }
  return 0;
}

/* The interface index of a net_af_packet port (0: the driver names none),
 * -1 for any other port. */
static long af_packet_ifindex(uint16_t port_id) {
  struct rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port_id, &info) || !info.driver_name ||
      strcmp(info.driver_name, "net_af_packet"))
    return -1;
  return (long)info.if_index;
}

/* Two net_af_packet ports on one interface would each receive every frame
 * (every HTLC twice, the second refused after the first settled) and their
 * sockets could not be told apart: refused. */
static int af_packet_unique(const ampd_app_t *app) {
  for (unsigned i = 0; i < app->n_ports; i++) {
    long ifi = af_packet_ifindex(app->ports[i].port_id);
    for (unsigned j = 0; ifi > 0 && j < i; j++) {
      if (af_packet_ifindex(app->ports[j].port_id) != ifi) continue;
      char name[IF_NAMESIZE] = "?";
      (void)if_indextoname((unsigned)ifi, name);
      ampd_log(AMP_LOG_ERROR, "ports %u and %u are both net_af_packet on interface %s: each"
               " would receive every frame; give each port its own interface",
               app->ports[j].port_id, app->ports[i].port_id, name);
      return -1;
    }
  }
  return 0;
}

/* A net_af_packet port: finds the PMD's packet sockets, those of this
 * process bound to the port's interface (one per queue pair; no other port
 * is on that interface: af_packet_unique), so that ampd_port_kernel_drops
 * can read what their rings lost. The PMD owns them; ampd only reads their
 * statistics. Nothing to do for other drivers. */
static void port_kernel_sockets(ampd_port_t *p) {
  long ifi = af_packet_ifindex(p->port_id);
  if (ifi < 0) return;
  DIR *d = ifi ? opendir("/proc/self/fd") : NULL;
  if (!d) {
    ampd_log(AMP_LOG_WARN, "port %u: net_af_packet, but %s: frames its rx ring drops go"
             " uncounted", p->port_id, ifi ? "/proc/self/fd cannot be read"
             : "the driver names no interface");
    return;
  }
  unsigned n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < AMPD_MAX_QUEUES) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || fd == dirfd(d)) continue;
    int dom = 0;
    socklen_t len = sizeof dom;
    if (getsockopt((int)fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) || dom != AF_PACKET) continue;
    struct sockaddr_ll sll;
    len = sizeof sll;
    if (getsockname((int)fd, (struct sockaddr *)&sll, &len) ||
        sll.sll_ifindex != ifi)
      continue;
    p->kfd[n++] = (int)fd;
  }
  closedir(d);
  atomic_store(&p->n_kfd, n);
  if (n)
    ampd_log(AMP_LOG_INFO, "port %u: %u af_packet socket(s); their ring drops are counted"
             " (kernel_drops)", p->port_id, n);
  else
    ampd_log(AMP_LOG_WARN, "port %u: net_af_packet, but no packet socket found: frames its"
             " rx ring drops go uncounted", p->port_id);
}

uint64_t ampd_port_kernel_drops(ampd_app_t *app, unsigned i) {
  ampd_port_t *p = &app->ports[i];
  unsigned n = atomic_load(&p->n_kfd);
  for (unsigned q = 0; q < n; q++) {
    struct tpacket_stats st;
    socklen_t len = sizeof st;
    if (getsockopt(p->kfd[q], SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0 && st.tp_drops)
      atomic_fetch_add(&p->kernel_drops, st.tp_drops);
  }
  return atomic_load(&p->kernel_drops);
}

int ampd_ports_setup(ampd_app_t *app) {
  if (port_ids(app) || af_packet_unique(app)) return -1;
  uint16_t nrxd[AMP_CONFIG_MAX_PORTS], ntxd[AMP_CONFIG_MAX_PORTS];
  int scatter[AMP_CONFIG_MAX_PORTS];
  unsigned n_mbufs = 0;
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    ampd_port_t *p = &app->ports[pi];
    if (port_configure(app, p, &nrxd[pi], &ntxd[pi], &scatter[pi])) return -1;
    n_mbufs += p->n_txq * ntxd[pi] + (scatter[pi] ? p->n_rxq * nrxd[pi] : 0);
  }
  /* Pool: tx rings, rx rings of scattering ports, and per worker a burst, its
   * tx buffers, an open frame per gateway; plus the per-lcore caches. */
  n_mbufs += app->n_workers * (AMPD_BURST * (1 + app->n_ports) + AMP_CONFIG_MAX_GATEWAYS);
  n_mbufs += rte_lcore_count() * POOL_CACHE + 1024;
  if (app->cfg.mbufs) n_mbufs = app->cfg.mbufs;
  app->pool = rte_pktmbuf_pool_create("ampd_pool", n_mbufs, POOL_CACHE, 0,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
  if (!app->pool) {
    ampd_log(AMP_LOG_ERROR, "cannot make a pool of %u mbufs: %s (give EAL more memory with -m,"
             " or set --mbufs)", n_mbufs, rte_strerror(rte_errno));
    return -1;
  }
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    ampd_port_t *p = &app->ports[pi];
    if (port_queues(app, p, nrxd[pi], ntxd[pi], scatter[pi])) return -1;
    struct rte_ether_addr mac;
    if (rte_eth_macaddr_get(p->port_id, &mac) == 0) memcpy(p->mac, mac.addr_bytes, 6);
    if (app->cfg.has_mac) memcpy(p->mac, app->cfg.mac, 6);
    int rc = rte_eth_dev_start(p->port_id);
    if (rc) {
      ampd_log(AMP_LOG_ERROR, "port %u: start failed: %s", p->port_id, rte_strerror(-rc));
      return -1;
    }
    /* Frames to our IP may carry another MAC on a shared segment (and
     * af_packet needs it to see them at all). Not every driver has it. */
    (void)rte_eth_promiscuous_enable(p->port_id);
    port_kernel_sockets(p);
    uint16_t mtu = 1500;
    if (rte_eth_dev_get_mtu(p->port_id, &mtu)) mtu = 1500;
    unsigned fmax = (unsigned)mtu + AMP_FRAME_ETH_LEN;
    if (fmax > AMP_FRAME_MAX_LEN) fmax = AMP_FRAME_MAX_LEN;
    p->tx_frame_max = (uint16_t)fmax;
    ampd_log(AMP_LOG_INFO, "port %u: MTU %u, mac %02x:%02x:%02x:%02x:%02x:%02x", p->port_id, mtu,
             p->mac[0], p->mac[1], p->mac[2], p->mac[3], p->mac[4], p->mac[5]);
  }
  /* rx queues to workers, round robin over every (port, queue). */
  unsigned k = 0;
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    for (uint16_t q = 0; q < app->ports[pi].n_rxq; q++, k++) {
      ampd_worker_t *w = &app->workers[k % app->n_workers];
      if (w->n_rxq == AMPD_MAX_RXQ) continue;
      w->rxq[w->n_rxq].port = (uint16_t)pi;
      w->rxq[w->n_rxq].queue = q;
      w->rxq[w->n_rxq].left = app->bench_rx_packets[pi] ? app->bench_rx_packets[pi] : UINT64_MAX;
      w->n_rxq++;
    }
  }
  if (k < app->n_workers)
    ampd_log(AMP_LOG_WARN, "%u worker(s) but only %u rx queue(s): %u worker(s) only answer"
             " (timeouts, commits)", app->n_workers, k, app->n_workers - k);
  /* A tx buffer per (worker, port). */
  for (unsigned wi = 0; wi < app->n_workers; wi++) {
    for (unsigned pi = 0; pi < app->n_ports; pi++) {
      if (ampd_worker_txbuf_init(&app->workers[wi], pi,
                                 (uint16_t)(wi % app->ports[pi].n_txq))) {
        ampd_log(AMP_LOG_ERROR, "cannot allocate tx buffers");
        return -1;
      }
    }
  }
  return 0;
}

void ampd_ports_close(ampd_app_t *app) {
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    uint16_t pid = app->ports[pi].port_id;
    atomic_store(&app->ports[pi].n_kfd, 0);  /* the PMD closes its sockets */
    int rc = rte_eth_dev_stop(pid);
    if (rc) ampd_log(AMP_LOG_WARN, "port %u: stop: %s", pid, rte_strerror(-rc));
    rte_eth_dev_close(pid);
  }
}
