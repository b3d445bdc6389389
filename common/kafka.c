#include "newsalert/kafka.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/config.h"
#include "newsalert/log.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

na_err_t na_kafka_props_add(struct na_kafka_props *props, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        return NA_ERR_INVALID;
    }
    char **n = realloc(props->kv, (props->cnt + 1) * sizeof(*n));
    if (!n) {
        return NA_ERR_NOMEM;
    }
    props->kv = n;
    if (!(n[props->cnt] = na_strdup(kv))) {
        return NA_ERR_NOMEM;
    }
    props->cnt++;
    return NA_OK;
}

void na_kafka_props_cleanup(struct na_kafka_props *props) {
    if (!props) {
        return;
    }
    for (size_t i = 0; i < props->cnt; i++) {
        free(props->kv[i]);
        if (props->src) {
            free(props->src[i]);
        }
    }
    free(props->kv);
    free(props->src);
    props->kv = NULL;
    props->src = NULL;
    props->cnt = 0;
}

bool na_kafka_prop_is_secret(const char *key) {
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token") ||
           strstr(key, "sasl.jaas.config") || strstr(key, "key") != NULL;
}

na_err_t na_kafka_props_resolve(struct na_kafka_props *props, char *errstr,
                                size_t errstr_size) {
    char key[256];
    for (size_t i = 0; i < props->cnt; i++) {
        const char *kv = props->src && props->src[i] ? props->src[i] : props->kv[i];
        const char *eq = strchr(kv, '=');
        size_t klen = (size_t)(eq - kv);
        char *secret = NULL;
        char *line = NULL;
        if (klen >= sizeof(key)) {
            continue;
        }
        memcpy(key, kv, klen);
        key[klen] = '\0';
        if (eq[1] != '@' ||
            !(strstr(key, "password") || strstr(key, "secret") || strstr(key, "token"))) {
            continue;
        }
        /* Keep "key=@..." itself: a reload resolves it again. */
        if (!props->src && !(props->src = calloc(props->cnt, sizeof(*props->src)))) {
            return NA_ERR_NOMEM;
        }
        if (!props->src[i] && !(props->src[i] = na_strdup(kv))) {
            return NA_ERR_NOMEM;
        }
        kv = props->src[i];
        if (eq[2] == '@') { /* "@@x": the value "@x" */
            if (!(line = na_strdup(kv))) {
                return NA_ERR_NOMEM;
            }
            memmove(line + klen + 1, line + klen + 2, strlen(line + klen + 2) + 1);
            free(props->kv[i]);
            props->kv[i] = line;
            continue;
        }
        char detail[512];
        na_err_t err =
            na_conf_read_secret(kv + klen + 2, &secret, detail, sizeof(detail));
        if (err) {
            snprintf(errstr, errstr_size, "kafka %s: %s", key, detail);
            return err;
        }
        struct na_buf b;
        na_buf_init(&b);
        na_buf_printf(&b, "%s=%s", key, secret);
        free(secret);
        if (!(line = na_buf_steal(&b))) {
            return NA_ERR_NOMEM;
        }
        free(props->kv[i]);
        props->kv[i] = line;
    }
    return NA_OK;
}

/* Security failures per client, by rd_kafka_name() (unique within a
 * process): written by librdkafka's threads (certificate verification, the
 * log callback), read by na_kafka_check_connect(). */
#define SEC_SLOTS 32
struct sec_slot {
    char name[64];
    char what[1024];
    int precise; /* from certificate verification: not overwritten by the
                  * handshake's generic text */
};
static pthread_mutex_t sec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sec_slot sec_slots[SEC_SLOTS];
static unsigned sec_next;

static void sec_note(const rd_kafka_t *rk, const char *what, int precise) {
    const char *name = rd_kafka_name(rk);
    struct sec_slot *slot = NULL;
    pthread_mutex_lock(&sec_lock);
    for (unsigned i = 0; i < SEC_SLOTS; i++) {
        if (!strcmp(sec_slots[i].name, name)) {
            slot = &sec_slots[i];
            break;
        }
    }
    if (!slot) {
        slot = &sec_slots[sec_next++ % SEC_SLOTS];
        snprintf(slot->name, sizeof(slot->name), "%s", name);
        slot->precise = 0;
    }
    if (precise || !slot->precise) {
        snprintf(slot->what, sizeof(slot->what), "%s", what);
        slot->precise = precise;
    }
    pthread_mutex_unlock(&sec_lock);
}

bool na_kafka_security_error(const rd_kafka_t *rk, char *buf, size_t size) {
    const char *name = rd_kafka_name(rk);
    bool found = false;
    buf[0] = '\0';
    pthread_mutex_lock(&sec_lock);
    for (unsigned i = 0; i < SEC_SLOTS; i++) {
        if (!strcmp(sec_slots[i].name, name) && sec_slots[i].what[0]) {
            snprintf(buf, size, "%s", sec_slots[i].what);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&sec_lock);
    return found;
}

/* "[thrd:..]: sasl_ssl://127.0.0.1:9093/bootstrap: SASL authentication
 * error: why (after 418ms in state AUTH_REQ)" -> the broker's address in
 * @p broker and "why" in @p why. */
static void split_failure(const char *msg, char *broker, size_t broker_size, char *why,
                          size_t why_size) {
    const char *p = msg;
    const char *colon;
    broker[0] = '\0';
    if (*p == '[' && (colon = strstr(p, "]: "))) {
        p = colon + 3;
    }
    const char *scheme = strstr(p, "://");
    if (scheme && (colon = strstr(scheme, ": "))) {
        const char *host = scheme + 3;
        size_t n = strcspn(host, "/");
        if (host + n > colon) {
            n = (size_t)(colon - host);
        }
        snprintf(broker, broker_size, "%.*s", (int)n, host);
        p = colon + 2;
    }
    static const char *const prefixes[] = {"SASL authentication error: ", NULL};
    for (const char *const *pre = prefixes; *pre; pre++) {
        if (!strncmp(p, *pre, strlen(*pre))) {
            p += strlen(*pre);
        }
    }
    size_t n = strlen(p);
    const char *after = strstr(p, " (after ");
    if (after) {
        n = (size_t)(after - p);
    }
    snprintf(why, why_size, "%.*s", (int)n, p);
}

/* SASL and TLS failures as librdkafka logs them (fac FAIL, level 3): the
 * only place their text is read. */
static void note_failure(const rd_kafka_t *rk, const char *msg) {
    char broker[300];
    char rest[400];
    char line[1024];
    char mech[64] = "";
    size_t mech_size = sizeof(mech);
    split_failure(msg, broker, sizeof(broker), rest, sizeof(rest));
    if (strstr(msg, "SASL authentication error") || strstr(msg, "SASL SCRAM") ||
        strstr(msg, "SASL handshake failed")) {
        rd_kafka_conf_get(rd_kafka_conf((rd_kafka_t *)rk), "sasl.mechanisms", mech,
                          &mech_size);
        int old_scram = !strncmp(mech, "SCRAM", 5) && rd_kafka_version() < 0x020601ff;
        snprintf(line, sizeof(line),
                 "broker %s refused our SASL %s credentials (check sasl.username and "
                 "sasl.password): %s%s",
                 broker, mech[0] ? mech : "", rest,
                 old_scram ? NA_KAFKA_OLD_SCRAM_HINT : "");
        sec_note(rk, line, 0);
    } else if (strstr(msg, "SSL handshake failed")) {
        snprintf(line, sizeof(line), "TLS handshake with broker %s failed: %s", broker,
                 rest);
        sec_note(rk, line, 0);
    } else if (strstr(msg, "alert bad certificate") ||
               strstr(msg, "alert certificate required") ||
               strstr(msg, "alert unknown ca")) {
        snprintf(line, sizeof(line),
                 "broker %s refused our client certificate (mutual TLS: check "
                 "ssl.certificate.location and ssl.key.location): %s",
                 broker, rest);
        sec_note(rk, line, 0);
    }
}

/* librdkafka calls this from its broker threads during the TLS handshake;
 * it decides nothing OpenSSL has not (an error stays an error) and only
 * keeps the reason, which librdkafka's own message leaves out. */
static int cert_verify_cb(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                          int *x509_error, int depth, const char *buf, size_t size,
                          char *errstr, size_t errstr_size, void *opaque) {
    char line[1024];
    const char *why;
    (void)broker_id;
    (void)buf;
    (void)size;
    (void)opaque;
    if (*x509_error == X509_V_OK) {
        return 1;
    }
    why = X509_verify_cert_error_string(*x509_error);
    switch (*x509_error) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        snprintf(line, sizeof(line),
                 "broker %s's TLS certificate is not for the name we connected to "
                 "(%s): use a broker address the certificate names",
                 broker_name, why);
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(line, sizeof(line),
                 "broker %s's TLS certificate is signed by a CA we do not trust (%s): "
                 "set ssl.ca.location to the CA that signed it",
                 broker_name, why);
        break;
    default:
        snprintf(line, sizeof(line),
                 "broker %s's TLS certificate failed verification (%s, depth %d)",
                 broker_name, why, depth);
        break;
    }
    sec_note(rk, line, 1);
    snprintf(errstr, errstr_size, "%s", why);
    return 0;
}

/* librdkafka calls this from its own threads; na_log() is thread-safe. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    enum na_log_level lvl = level <= 3   ? NA_LOG_ERROR
                            : level <= 4 ? NA_LOG_WARN
                            : level <= 6 ? NA_LOG_INFO
                                         : NA_LOG_DEBUG;
    if (strstr(buf, "Broker handle destroyed")) {
        lvl = NA_LOG_DEBUG; /* our own shutdown, not the broker's doing */
    } else if (level <= 3 && !strcmp(fac, "FAIL")) {
        note_failure(rk, buf);
    }
    if (!strncmp(rd_kafka_name(rk), NA_KAFKA_QUIET_CLIENT "#",
                 sizeof(NA_KAFKA_QUIET_CLIENT))) {
        return;
    }
    na_log(lvl, "kafka", "rdkafka_log", "client=%s fac=%s msg=%s", rd_kafka_name(rk),
           na_log_q(fac), na_log_q(buf));
}

na_err_t na_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                           char *errstr, size_t errstr_size) {
    if (rd_kafka_conf_set(conf, key, value, errstr, errstr_size) != RD_KAFKA_CONF_OK) {
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

na_err_t na_kafka_conf_prefetch_defaults(rd_kafka_conf_t *conf, char *errstr,
                                         size_t errstr_size) {
    return na_kafka_conf_set(conf, "queued.max.messages.kbytes", NA_KAFKA_PREFETCH_KBYTES,
                             errstr, errstr_size);
}

void na_kafka_refill_init(struct na_kafka_refill *r, rd_kafka_t *rk) {
    char v[32];
    size_t n = sizeof(v);
    memset(r, 0, sizeof(*r));
    r->rk = rk;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "queued.max.messages.kbytes", v, &n) !=
        RD_KAFKA_CONF_OK) {
        return;
    }
    r->budget = strtod(v, NULL) * 1024.0;
    if (r->budget > 0) {
        r->q = rd_kafka_queue_get_consumer(rk);
    }
}

/* Due when the queue held half the bound or more since the last refill
 * (the fetcher may have stopped at the bound: the estimate need not be
 * exact) and is down to half the bound and to half of what it held, or
 * empty: one per filling, and none while the queue stays short, as when
 * the consumer keeps up. The estimate may be low by up to a half (then the
 * fetcher still finds room); a refill it cannot act on leaves the queue to
 * librdkafka's own tick. */
bool na_kafka_refill_due(size_t peak, size_t qlen, double avg_len, double budget) {
    if (avg_len <= 0 || budget <= 0 || (double)peak * avg_len < budget * 0.5) {
        return false;
    }
    return !qlen || (qlen <= peak / 2 && (double)qlen * avg_len <= budget * 0.5);
}

bool na_kafka_at_end(rd_kafka_t *rk, const rd_kafka_message_t *m) {
    int64_t lo = RD_KAFKA_OFFSET_INVALID;
    int64_t hi = RD_KAFKA_OFFSET_INVALID;
    if (!m || m->err || !m->rkt || m->offset < 0 ||
        rd_kafka_get_watermark_offsets(rk, rd_kafka_topic_name(m->rkt), m->partition, &lo,
                                       &hi) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
    }
    return hi >= 0 && m->offset + 1 >= hi;
}

void na_kafka_refill_note(struct na_kafka_refill *r, const rd_kafka_message_t *m) {
    if (!r->q) {
        return;
    }
    if (m && !m->err) {
        /* librdkafka counts a message's key and value against the bound. */
        double len = (double)(m->len + m->key_len);
        r->avg_len = r->avg_len > 0 ? r->avg_len + (len - r->avg_len) / 64.0 : len;
    }
    size_t qlen = rd_kafka_queue_length(r->q);
    if (qlen > r->peak) {
        r->peak = qlen;
    }
    if (!na_kafka_refill_due(r->peak, qlen, r->avg_len, r->budget)) {
        return;
    }
    r->peak = qlen;
    r->sent++;
    na_kafka_wake(r->rk);
}

void na_kafka_wake(rd_kafka_t *rk) {
    const struct rd_kafka_metadata *md = NULL;
    /* Timeout 0: the request is sent and not waited for (its answer only
     * refreshes librdkafka's view of the brokers). */
    if (rd_kafka_metadata(rk, 0, NULL, &md, 0) == RD_KAFKA_RESP_ERR_NO_ERROR && md) {
        rd_kafka_metadata_destroy(md);
    }
}

void na_kafka_refill_cleanup(struct na_kafka_refill *r) {
    if (r->q) {
        rd_kafka_queue_destroy(r->q);
    }
    memset(r, 0, sizeof(*r));
}

rd_kafka_conf_t *na_kafka_conf_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char key[256];

    rd_kafka_conf_set_log_cb(conf, log_cb);
    /* Only consulted when TLS is on and verification enabled. */
    (void)rd_kafka_conf_set_ssl_cert_verify_cb(conf, cert_verify_cb);
    if (brokers &&
        na_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size)) {
        goto fail;
    }
    for (size_t i = 0; props && i < props->cnt; i++) {
        const char *eq = strchr(props->kv[i], '=');
        size_t klen = (size_t)(eq - props->kv[i]);
        if (klen >= sizeof(key)) {
            snprintf(errstr, errstr_size, "property name too long");
            goto fail;
        }
        memcpy(key, props->kv[i], klen);
        key[klen] = '\0';
        if (na_kafka_conf_set(conf, key, eq + 1, errstr, errstr_size)) {
            goto fail;
        }
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static const char *const articles_configs[] = {"cleanup.policy",
                                               "compact,delete",
                                               "retention.ms",
                                               "2592000000",
                                               "max.message.bytes",
                                               "2097152",
                                               NULL};
static const char *const dlq_configs[] = {"cleanup.policy", "delete", "retention.ms",
                                          "2592000000", NULL};
static const char *const alerts_configs[] = {"cleanup.policy", "compact", NULL};

struct na_topic_spec na_kafka_topic_articles(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_ARTICLES, NA_ARTICLES_PARTITIONS,
                              articles_configs};
    return s;
}

struct na_topic_spec na_kafka_topic_dlq(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_DLQ, 1, dlq_configs};
    return s;
}

struct na_topic_spec na_kafka_topic_alerts(const char *name) {
    struct na_topic_spec s = {name ? name : NA_TOPIC_ALERTS, 3, alerts_configs};
    return s;
}

na_err_t na_kafka_ensure_topics(rd_kafka_t *rk, const struct na_topic_spec *specs,
                                size_t cnt, int timeout_ms, char *errstr,
                                size_t errstr_size) {
    rd_kafka_NewTopic_t **topics = NULL;
    rd_kafka_queue_t *queue = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    na_err_t err = NA_OK;
    char detail[512];

    topics = calloc(cnt, sizeof(*topics));
    if (!topics) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        topics[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions, -1, detail,
                                          sizeof(detail));
        if (!topics[i]) {
            snprintf(errstr, errstr_size, "topic %s: %s", specs[i].name, detail);
            err = NA_ERR_INVALID;
            goto out;
        }
        for (const char *const *c = specs[i].configs; c && *c; c += 2) {
            if (rd_kafka_NewTopic_set_config(topics[i], c[0], c[1])) {
                snprintf(errstr, errstr_size, "topic %s: bad config %s", specs[i].name,
                         c[0]);
                err = NA_ERR_INVALID;
                goto out;
            }
        }
    }
    queue = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, topics, cnt, opts, queue);
    ev = rd_kafka_queue_poll(queue, timeout_ms + 2000);
    if (!ev) {
        snprintf(errstr, errstr_size, "creating topics: no answer within %d ms",
                 timeout_ms);
        err = NA_ERR_TIMEOUT;
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "creating topics: %s",
                 rd_kafka_event_error_string(ev));
        err = NA_ERR_KAFKA;
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t res_cnt = 0;
    const rd_kafka_topic_result_t **results =
        rd_kafka_CreateTopics_result_topics(res, &res_cnt);
    for (size_t i = 0; i < res_cnt; i++) {
        rd_kafka_resp_err_t terr = rd_kafka_topic_result_error(results[i]);
        const char *name = rd_kafka_topic_result_name(results[i]);
        if (!terr) {
            na_log(NA_LOG_INFO, "kafka", "topic_created", "topic=%s", na_log_q(name));
        } else if (terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            /* Not fatal: a broker that only auto-creates, or an ACL that lets us
             * produce but not create, still works. */
            na_log(NA_LOG_WARN, "kafka", "topic_create_failed", "topic=%s err=%s",
                   na_log_q(name),
                   na_log_q(rd_kafka_topic_result_error_string(results[i])));
        }
    }
out:
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    if (opts) {
        rd_kafka_AdminOptions_destroy(opts);
    }
    if (queue) {
        rd_kafka_queue_destroy(queue);
    }
    for (size_t i = 0; i < cnt; i++) {
        if (topics[i]) {
            rd_kafka_NewTopic_destroy(topics[i]);
        }
    }
    free(topics);
    return err;
}

na_outcome_t na_kafka_classify(rd_kafka_resp_err_t err, int is_fatal) {
    if (is_fatal || err == RD_KAFKA_RESP_ERR__FATAL) {
        return NA_OUTCOME_FATAL;
    }
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return NA_OUTCOME_OK;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return NA_OUTCOME_DROP;
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return NA_OUTCOME_FATAL;
    /* SASL_AUTHENTICATION_FAILED, __AUTHENTICATION, __SSL: a secret or a
     * certificate that may be mended while we run. At start
     * na_kafka_check_connect() makes them fatal; later librdkafka
     * reconnects with backoff and the daemon goes on. */
    default:
        return NA_OUTCOME_RETRY;
    }
}

na_err_t na_kafka_wait_ready(rd_kafka_t *rk, int timeout_ms) {
    int64_t deadline = na_mono_ms() + timeout_ms;
    while (na_mono_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 2000);
        if (!err) {
            int brokers = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (brokers > 0) {
                return NA_OK;
            }
        }
        na_sleep_ms(200);
    }
    return NA_ERR_TIMEOUT;
}

na_err_t na_kafka_check_connect(rd_kafka_t *rk, int timeout_ms, int *brokers_cnt,
                                char *errstr, size_t errstr_size) {
    int64_t deadline = na_mono_ms() + timeout_ms;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - na_mono_ms();
        /* Short slices: a refused handshake is seen within 100 ms, before
         * librdkafka's reconnect backoff has tried again more than once. */
        kerr = rd_kafka_metadata(rk, 0, NULL, &md,
                                 left > 100 ? 100
                                 : left > 0 ? (int)left
                                            : 1);
        if (!kerr) {
            int cnt = md->broker_cnt;
            rd_kafka_metadata_destroy(md);
            if (cnt > 0) {
                if (brokers_cnt) {
                    *brokers_cnt = cnt;
                }
                return NA_OK;
            }
        }
        if (na_kafka_security_error(rk, errstr, errstr_size)) {
            /* Serve the error events queued meanwhile now, so their log
             * lines come before the caller's one-line answer. Nothing is
             * assigned or produced yet: they are all there is. */
            if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) {
                rd_kafka_message_t *rkm;
                while ((rkm = rd_kafka_consumer_poll(rk, 0))) {
                    rd_kafka_message_destroy(rkm);
                }
            }
            rd_kafka_poll(rk, 0);
            return NA_ERR_AUTH;
        }
        if (na_mono_ms() >= deadline) {
            break;
        }
        if (kerr != RD_KAFKA_RESP_ERR__TIMED_OUT) {
            na_sleep_ms(50); /* answered at once (no broker yet): not a spin */
        }
    }
    snprintf(errstr, errstr_size, "no broker answered within %d ms (%s)", timeout_ms,
             rd_kafka_err2str(kerr));
    return NA_ERR_TIMEOUT;
}

na_err_t na_kafka_start_check(rd_kafka_t *rk, char *errstr, size_t errstr_size) {
    char detail[1024];
    na_err_t err = na_kafka_check_connect(rk, NA_KAFKA_CHECK_TIMEOUT_MS, NULL, detail,
                                          sizeof(detail));
    if (err == NA_ERR_AUTH) {
        snprintf(errstr, errstr_size, "kafka: %s", detail);
        return err;
    }
    if (err) {
        na_log(NA_LOG_WARN, "kafka", "unreachable", "client=%s err=%s msg=%s",
               na_log_q(rd_kafka_name(rk)), na_log_q(detail),
               na_log_q("going on: librdkafka keeps trying"));
    }
    return NA_OK;
}

void na_kafka_reload_sasl(const struct na_kafka_props *props, rd_kafka_t *const *rks,
                          size_t cnt) {
    struct na_kafka_props copy = {NULL, 0, NULL};
    char errstr[512];
    const char *user = NULL, *password = NULL;
    na_err_t err = NA_OK;
    bool from_file = false;

    for (size_t i = 0; i < props->cnt && !err; i++) {
        const char *kv = props->src && props->src[i] ? props->src[i] : props->kv[i];
        from_file |= props->src && props->src[i];
        err = na_kafka_props_add(&copy, kv);
    }
    if (!from_file) {
        goto out; /* nothing to read again */
    }
    if (err || (err = na_kafka_props_resolve(&copy, errstr, sizeof(errstr)))) {
        na_log(NA_LOG_ERROR, "kafka", "reload_failed", "what=kafka err=%s kept=old",
               na_log_q(err == NA_ERR_NOMEM ? "out of memory" : errstr));
        goto out;
    }
    for (size_t i = 0; i < copy.cnt; i++) {
        if (!strncmp(copy.kv[i], "sasl.username=", 14)) {
            user = copy.kv[i] + 14;
        } else if (!strncmp(copy.kv[i], "sasl.password=", 14)) {
            password = copy.kv[i] + 14;
        }
    }
    if (!user || !password) {
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!rks[i]) {
            continue;
        }
        rd_kafka_error_t *kerror = rd_kafka_sasl_set_credentials(rks[i], user, password);
        if (kerror) {
            na_log(NA_LOG_ERROR, "kafka", "reload_failed", "what=kafka client=%s err=%s",
                   na_log_q(rd_kafka_name(rks[i])),
                   na_log_q(rd_kafka_error_string(kerror)));
            rd_kafka_error_destroy(kerror);
        } else {
            na_log(NA_LOG_INFO, "kafka", "credentials_reloaded", "client=%s",
                   na_log_q(rd_kafka_name(rks[i])));
        }
    }
out:
    na_kafka_props_cleanup(&copy);
}
