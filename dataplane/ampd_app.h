/* ampd_app.h: the daemon as a function, so a test binary can run the real
 * daemon in-process around its own ports (the net_ring end-to-end test).
 * main.c is only `return ampd_run(argc, argv, NULL);`. */
#ifndef AMPD_APP_H
#define AMPD_APP_H

typedef struct ampd_app ampd_app_t;

/* Hooks into the daemon's life, all optional (NULL), all on the main lcore. */
typedef struct {
  /* after_eal: EAL is up, nothing else yet (make vdev ports here, e.g. with
   * rte_eth_from_rings). Return 0, or non-zero to give up (exit code 1). */
  int (*after_eal)(void *arg);
  /* started: ports started and workers running. Return 0 to go on into the
   * control loop, non-zero to stop at once. */
  int (*started)(void *arg, ampd_app_t *app);
  /* poll: called every ~2 ms by the control loop; non-zero asks for a stop
   * (the same orderly stop as SIGTERM). */
  int (*poll)(void *arg, ampd_app_t *app);
  /* stopped: workers have finished and flushed tx; ports are still open. */
  void (*stopped)(void *arg, ampd_app_t *app);
  void *arg;
} ampd_hooks_t;

/* ampd_run is the whole daemon: `ampd [EAL args] -- [ampd options]`.
 * Returns the process exit code: 0 after an orderly stop (signal,
 * --exit-idle, a hook) or --help; 2 for a bad option or node key (nothing
 * touched); 1 for any other failure at start. Call once per process (EAL). */
int ampd_run(int argc, char **argv, const ampd_hooks_t *hooks);

#endif /* AMPD_APP_H */
