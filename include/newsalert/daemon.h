/**
 * @file daemon.h
 * @brief What both daemons share at run time: the operations config keys
 *        (log_format, http_listen), signals (stop, reload), the drain
 *        deadline, and reloading a piece of state without losing the old one.
 *
 * Signals: SIGTERM and SIGINT clear the running flag (a second one while
 * draining asks to abandon the drain); SIGHUP sets the reload flag; SIGPIPE
 * is ignored. The handlers only touch `volatile sig_atomic_t` variables; the
 * daemon loops poll na_daemon_should_stop() and na_daemon_take_reload() with
 * their usual short timeouts, so a signal is acted on within one loop turn.
 *
 * Reload: na_daemon_reload() runs a load step into a staging slot and swaps
 * it in only when the load succeeded; on failure the old state stays and
 * the reason is logged (`event=reload_failed what=rules err="..."`). Every
 * attempt is logged (`event=reloaded` / `reload_failed`) and counted in
 * `newsalert_reloads_total{what,result}`.
 */
#ifndef NEWSALERT_DAEMON_H
#define NEWSALERT_DAEMON_H

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/config.h"
#include "newsalert/err.h"

/** Operations settings both daemons embed in their config struct. */
struct na_daemon_conf {
    char *log_format;  /**< "log_format" / --log-format: logfmt|json */
    char *http_listen; /**< "http_listen": HOST:PORT of /healthz, /readyz, /metrics
                            and the status page; empty = no listener */
};

/**
 * The table lines of struct na_daemon_conf, for a daemon whose config
 * struct @p type has it as member @p member:
 *
 *     NA_DAEMON_CONF_ENTRIES(struct na_producer_conf, daemon),
 *     NA_CONF_END,
 */
/* clang-format off */
#define NA_DAEMON_CONF_ENTRIES(type, member)                                        \
    {"log_format", NA_CONF_STRING, offsetof(type, member.log_format), "logfmt",     \
     "log line format: logfmt|json", 0, 0, 0},                                      \
    {"http_listen", NA_CONF_STRING, offsetof(type, member.http_listen), "",         \
     "HOST:PORT for /healthz /readyz /metrics and the status page (empty: off)", 0, \
     0, 0}
/* clang-format on */

/**
 * @brief Apply the resolved settings: the log format; checks that
 *        http_listen is empty or HOST:PORT.
 * @returns NA_OK, or NA_ERR_CONFIG with errstr naming the key.
 */
NA_WUR na_err_t na_daemon_conf_apply(const struct na_daemon_conf *dc, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Check the operations keys of any config table that has them
 *        ("log_level", "log_format", "http_listen"), so that --check-config and
 *        --dump-config refuse what the daemon would refuse. na_cli_load()
 *        calls it; tables without these keys pass.
 * @returns NA_OK, or NA_ERR_CONFIG with errstr naming the key and value.
 */
NA_WUR na_err_t na_daemon_conf_check(const struct na_conf_entry *table, const void *obj,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Split "HOST:PORT", "[V6]:PORT" or ":PORT" (all interfaces).
 * @param host receives the host ("" for all interfaces), at most host_size-1 bytes.
 * @returns 0 and the port in *port (0..65535), or -1 when malformed.
 */
int na_daemon_parse_listen(const char *listen, char *host, size_t host_size, int *port);

/**
 * @brief Install the handlers: SIGTERM/SIGINT -> stop, SIGHUP -> reload,
 *        SIGPIPE ignored. Resets both flags. Call once from main().
 * @returns NA_OK or NA_ERR_IO (sigaction failed; errstr says why).
 */
NA_WUR na_err_t na_daemon_signals_install(char *errstr, size_t errstr_size);

/**
 * @brief What both daemons' main() do once the configuration is resolved:
 *        set the log level ("error|warn|info|debug"), apply @p dc (log
 *        format) and install the signal handlers. Problems are printed as
 *        "<prog>: <problem>" on stderr.
 * @returns 0, or the exit status to leave with (2 bad log level, 1 other).
 */
int na_daemon_setup(const char *prog, const char *log_level,
                    const struct na_daemon_conf *dc);

/**
 * @returns the flag the daemon loops already take (`volatile sig_atomic_t
 *          *running`): 1 until SIGTERM/SIGINT or na_daemon_request_stop().
 *          Borrowed, valid for the life of the process.
 */
volatile sig_atomic_t *na_daemon_running(void);

/** @returns true once a stop was asked for (SIGTERM, SIGINT, request_stop). */
bool na_daemon_should_stop(void);

/** @returns true when a second stop signal came: abandon the drain now. */
bool na_daemon_should_abort(void);

/** @brief Ask the loops to stop, as SIGTERM does (async-signal-safe). */
void na_daemon_request_stop(void);

/**
 * @returns true once per SIGHUP received since the last call (several
 *          SIGHUPs before a call count as one), and clears the flag.
 */
bool na_daemon_take_reload(void);

/** @brief Ask for a reload, as SIGHUP does (async-signal-safe). */
void na_daemon_request_reload(void);

/**
 * @brief A drain deadline: now (monotonic) + @p timeout_ms. The systemd
 *        units' TimeoutStopSec is the longest drain deadline plus a margin.
 * @returns the deadline in na_mono_ms() time.
 */
int64_t na_daemon_deadline(int64_t timeout_ms);

/**
 * @returns milliseconds left until @p deadline, capped at @p max_ms, 0 once it
 *          passed or a second stop signal asked to abandon the drain. Use it
 *          as the poll timeout of a drain loop: `while (work && left > 0)`.
 */
int na_daemon_deadline_left_ms(int64_t deadline, int max_ms);

/**
 * @brief Refresh the Kafka gauges of one client, from its local state (no
 *        broker round trip): `newsalert_kafka_queue_messages{client}` (messages
 *        and requests waiting in its queues: rd_kafka_outq_len()) and, for a
 *        consumer, `newsalert_consumer_lag_messages{topic,partition}` (high
 *        watermark last seen minus the position) for every assigned partition
 *        that has both. Call it from the main loop about once a second.
 * @param client short name for the label ("articles", "dlq", "consumer").
 */
void na_daemon_kafka_gauges(rd_kafka_t *rk, const char *client);

/** One piece of state that can be reloaded: load into staging, then swap. */
struct na_reload_ops {
    const char *what; /**< "rules", "routes", "sources": the log and metric label */
    /**
     * Load the new state into the caller's staging slot (ctx). Must not
     * touch the live state. @returns NA_OK or an error with errstr.
     */
    na_err_t (*load)(void *ctx, char *errstr, size_t errstr_size);
    /** Swap the staged state in (called only after load succeeded). */
    void (*commit)(void *ctx);
    /** Free whatever a failed load left staged (may be NULL). */
    void (*discard)(void *ctx);
    /** Optional: a short description of the live state for the log ("version=ab12"). */
    void (*describe)(void *ctx, char *buf, size_t size);
};

/**
 * @brief Reload one piece of state: load, then commit on success or discard
 *        and keep the old on failure. Logs one line either way (component
 *        @p comp) and counts newsalert_reloads_total{what,result}.
 * @returns what load returned.
 */
na_err_t na_daemon_reload(const char *comp, const struct na_reload_ops *ops, void *ctx);

#endif
