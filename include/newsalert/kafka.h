/**
 * @file kafka.h
 * @brief librdkafka set-up shared by both daemons: configuration with
 *        `-X key=value` pass-through, logging, topic creation, and the one
 *        function that classifies Kafka errors.
 */
#ifndef NEWSALERT_KAFKA_H
#define NEWSALERT_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

#include "newsalert/err.h"

#define NA_TOPIC_ARTICLES "news.articles"
#define NA_TOPIC_ALERTS "news.alerts"
#define NA_TOPIC_DLQ "news.dlq"
#define NA_TOPIC_ALERTS_RETRY "news.alerts.retry"

/** Retention of news.articles (30 days); see DESIGN.md on message timestamps. */
#define NA_ARTICLES_RETENTION_MS (30LL * 24 * 3600 * 1000)
#define NA_ARTICLES_PARTITIONS 6
#define NA_DLQ_RETENTION_MS (30LL * 24 * 3600 * 1000)

/** A list of librdkafka properties "key=value", in the order given. */
struct na_kafka_props {
    char **kv;
    size_t cnt;
    char **src; /**< NULL, or per entry the "key=@PATH" it was read from (or NULL) */
};

/** @brief Append "key=value" (copied); NA_ERR_INVALID without '='. */
NA_WUR na_err_t na_kafka_props_add(struct na_kafka_props *props, const char *kv);
void na_kafka_props_cleanup(struct na_kafka_props *props);

/**
 * @brief New librdkafka configuration: bootstrap.servers = @p brokers (when
 *        not NULL), our log callback, then @p props in order (so `-X` wins).
 * @returns new conf (rd_kafka_new() takes it; else rd_kafka_conf_destroy()),
 *          or NULL with librdkafka's error text verbatim in errstr.
 */
rd_kafka_conf_t *na_kafka_conf_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size);

/**
 * Prefetch bound of the consumers that read articles (the daemon's group
 * consumer, its retry reader, replay): queued.max.messages.kbytes, the
 * bytes librdkafka fetches ahead into the consumer queue, which is most of
 * a backfilling consumer's resident memory (librdkafka also keeps each
 * fetch under it: fetch.max.bytes follows it unless set). librdkafka's own
 * default is 65536 (64 MiB). 4 MiB keeps a 2-core backfill fed because
 * the daemon and replay refill the queue (struct na_kafka_refill): without
 * that, librdkafka 2.0 waits up to a second once the queue is full, and a
 * backfill reads at most a bound's worth per second (docs/benchmarks.md,
 * "Consumer memory").
 */
#define NA_KAFKA_PREFETCH_KBYTES "4096"

/**
 * @brief Set the prefetch defaults of a consumer that reads articles
 *        (NA_KAFKA_PREFETCH_KBYTES). Call before the user's -X and
 *        "kafka" properties are applied, so that theirs win.
 * @returns NA_OK, or NA_ERR_CONFIG with librdkafka's error text verbatim.
 */
NA_WUR na_err_t na_kafka_conf_prefetch_defaults(rd_kafka_conf_t *conf, char *errstr,
                                                size_t errstr_size);

/**
 * Keeps a consumer's prefetch going while it reads a backlog.
 *
 * Once the consumer queue holds queued.max.messages.kbytes, librdkafka's
 * fetcher (2.0 as Debian ships it) stops fetching and decides again only
 * when its broker thread next wakes: at the latest a second later, though
 * the queue may have been empty for most of it. A consumer faster than its
 * queue's bytes per second waits for that tick (newer releases have
 * fetch.queue.backoff.ms for it). The refill wakes the thread instead:
 * when the queue held half the bound or more and is down to half the
 * bound and half of what it held, it sends a metadata request (brokers only: any client
 * may, it asks for no permission), and handling that request makes the broker thread
 * decide again at once. librdkafka sends it to one broker; where several lead the
 * partitions read, the next refills reach the others, and the tick the rest.
 *
 * Fill is estimated from the queue's length and the sizes of the messages
 * read: librdkafka gives no byte count. Not thread-safe: the thread that
 * polls the consumer calls na_kafka_refill_note() for each message.
 */
struct na_kafka_refill {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q; /* the consumer queue; NULL: off */
    double budget;       /* queued.max.messages.kbytes, in bytes */
    double avg_len;      /* message size, moving average */
    size_t peak;         /* longest the queue was since the last refill */
    uint64_t sent;       /* refills sent */
};

/** @brief Start refilling @p rk's consumer queue (after rd_kafka_new() and
 *         rd_kafka_poll_set_consumer()). Off when the bound cannot be read. */
void na_kafka_refill_init(struct na_kafka_refill *r, rd_kafka_t *rk);

/** @brief After each poll of the consumer queue: note the message it gave
 *         (NULL: none) and wake the fetcher when due. */
void na_kafka_refill_note(struct na_kafka_refill *r, const rd_kafka_message_t *m);

void na_kafka_refill_cleanup(struct na_kafka_refill *r);

/** @brief Make @p rk's broker threads decide what to fetch now, not on
 *         their next one-second tick (a metadata request, not waited for):
 *         after a refill, or after resuming a paused partition. */
void na_kafka_wake(rd_kafka_t *rk);

/**
 * @brief The refill's decision (exposed for its tests): is a refill due for
 *        a queue of @p qlen messages of about @p avg_len bytes that held
 *        @p peak messages since the last refill, under a bound of
 *        @p budget bytes?
 */
bool na_kafka_refill_due(size_t peak, size_t qlen, double avg_len, double budget);

/**
 * @brief Is @p m the last record of its partition that the broker had
 *        when librdkafka last fetched from it?
 *
 * The end a consumer learns from RD_KAFKA_RESP_ERR__PARTITION_EOF comes
 * from a fetch that starts at the high watermark, which the broker holds
 * for fetch.wait.max.ms (500 ms by default) before it answers with nothing.
 * The fetch that brought the last records already named that watermark:
 * librdkafka keeps it (rd_kafka_get_watermark_offsets(), no request), so a
 * reader that waits for the end of a backlog knows it there, at once.
 * False for an error event and when no fetch has named a watermark yet
 * (the EOF event still comes then); with transactions the end may be a
 * control record no consumer sees, and again only the EOF event tells.
 */
bool na_kafka_at_end(rd_kafka_t *rk, const rd_kafka_message_t *m);

/** @brief Set one property, librdkafka's error text verbatim in errstr. */
NA_WUR na_err_t na_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                                  const char *value, char *errstr, size_t errstr_size);

/** Declarative description of a topic the programs create when missing. */
struct na_topic_spec {
    const char *name;
    int partitions;
    const char *const *configs; /**< NULL-terminated key, value, key, value, ... */
};

/**
 * @brief Create the topics that do not exist yet (CreateTopics; "already
 *        exists" is success). Brokers that refuse (no ACL, auto-creation
 *        only) are logged, not fatal: producing will then auto-create.
 * @returns NA_OK, or NA_ERR_KAFKA / NA_ERR_TIMEOUT with errstr.
 */
NA_WUR na_err_t na_kafka_ensure_topics(rd_kafka_t *rk, const struct na_topic_spec *specs,
                                       size_t cnt, int timeout_ms, char *errstr,
                                       size_t errstr_size);

/** @returns the spec of one of the well-known topics, with @p name overriding. */
struct na_topic_spec na_kafka_topic_articles(const char *name);
struct na_topic_spec na_kafka_topic_dlq(const char *name);
struct na_topic_spec na_kafka_topic_alerts(const char *name);

/**
 * @brief The one place Kafka errors are classified: OK, RETRY (transient:
 *        the client retries or we try later), DROP (this message can never
 *        succeed: too large, bad topic), FATAL (the client instance is
 *        unusable: fenced idempotent producer, authentication).
 */
na_outcome_t na_kafka_classify(rd_kafka_resp_err_t err, int is_fatal);

/**
 * @brief Wait until the cluster answers a metadata request.
 * @returns NA_OK or NA_ERR_TIMEOUT.
 */
NA_WUR na_err_t na_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms);

/**
 * @brief SIGHUP: read the "@FILE" secrets of @p props again and hand the
 *        SASL user name and password to each client of @p rks (NULL entries
 *        skipped) with rd_kafka_sasl_set_credentials(); the next connection
 *        uses them. Other properties (ssl.key.password) need a restart.
 *        Logs `event=credentials_reloaded` or `event=reload_failed
 *        what=kafka` (never a value).
 */
void na_kafka_reload_sasl(const struct na_kafka_props *props, rd_kafka_t *const *rks,
                          size_t cnt);

/** Appended to a SCRAM failure when the linked librdkafka predates 2.6.1,
 * whose SCRAM brokers of Kafka 4.0 and later refuse whatever the password. */
#define NA_KAFKA_OLD_SCRAM_HINT                                                          \
    "; if the password is right and the broker runs Kafka 4.0 or later: librdkafka "     \
    "before 2.6.1 cannot use SCRAM with it (use PLAIN over TLS, mutual TLS, or a newer " \
    "librdkafka)"

/** client.id of a client whose librdkafka log lines are not printed (the
 * one-line answer of --check-config --connect); its failures still count. */
#define NA_KAFKA_QUIET_CLIENT "newsalert-check-config"

/** How long the start-up check waits for a broker to answer (ms). */
#define NA_KAFKA_CHECK_TIMEOUT_MS 10000

/**
 * @brief The start-up check of a client made with na_kafka_conf_new():
 *        metadata requests until one is answered, or until a failure that
 *        trying again cannot mend is seen (the broker refused our SASL
 *        credentials or client certificate, or its certificate failed
 *        verification: unknown CA, hostname mismatch, expired), or until
 *        @p timeout_ms passed.
 *
 * Daemons call it once after creating their first client: a security
 * failure then ends the run (exit 1, the one line of @p errstr) instead of
 * a retry loop nobody watches. Later the same failures are only logged
 * (`rdkafka_log` lines) and librdkafka keeps trying with its reconnect
 * backoff: a running daemon waits for the broker or the secret to be mended.
 *
 * @returns NA_OK (answered; *@p brokers_cnt set when not NULL), NA_ERR_AUTH
 *          (errstr: one line naming the broker and what to fix), or
 *          NA_ERR_TIMEOUT (nothing answered; errstr says so; callers that
 *          may start before the broker go on).
 */
NA_WUR na_err_t na_kafka_check_connect(rd_kafka_t *rk, int timeout_ms, int *brokers_cnt,
                                       char *errstr, size_t errstr_size);

/**
 * @brief What daemons call once after creating their first client:
 *        na_kafka_check_connect() with NA_KAFKA_CHECK_TIMEOUT_MS; a
 *        security failure is returned (errstr "kafka: ..."), a broker that
 *        does not answer yet is logged (`event=unreachable`) and NA_OK
 *        returned (the daemon may start before its broker).
 */
NA_WUR na_err_t na_kafka_start_check(rd_kafka_t *rk, char *errstr, size_t errstr_size);

/**
 * @brief The last security failure seen by client @p rk (by its name), as
 *        one line; "" when none. Thread-safe.
 * @returns true when there was one.
 */
bool na_kafka_security_error(const rd_kafka_t *rk, char *buf, size_t size);

/**
 * @brief Whether a librdkafka property may hold a secret (sasl.password,
 *        ssl.key.password, ssl.key.pem, sasl.jaas.config, ...): its value
 *        is shown as "***" wherever the configuration is printed.
 */
bool na_kafka_prop_is_secret(const char *key);

/**
 * @brief Replace every property whose name holds "password", "secret" or
 *        "token" and whose value is "@PATH" by the one line
 *        of that file (trailing newline and spaces dropped; "@@" starts a
 *        value that really begins with "@"). A relative PATH is looked up
 *        in $CREDENTIALS_DIRECTORY when set (systemd LoadCredential=).
 *        The "@PATH" form is kept in @p props->src so that a reload reads
 *        the files again.
 * @returns NA_OK, or NA_ERR_IO / NA_ERR_CONFIG with errstr naming the key
 *          and file (never the value).
 */
NA_WUR na_err_t na_kafka_props_resolve(struct na_kafka_props *props, char *errstr,
                                       size_t errstr_size);

#endif
