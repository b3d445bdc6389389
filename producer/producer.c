#include "producer.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "feed.h"
#include "fetch.h"
#include "fulltext.h"
#include "newsalert/http.h"
#include "newsalert/httpd.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "producer_reload.h"
#include "seen.h"
#include "sources.h"
#include "url.h"

/* Designated initialisers: the entry struct may grow members. */
#define C(f) offsetof(struct na_producer_conf, f)
#define E(k, t, f, d, text, lo, hi)                                                      \
    {                                                                                    \
        .key = (k), .type = (t), .offset = C(f), .def = (d), .desc = (text),             \
        .min = (lo), .max = (hi)                                                         \
    }
const struct na_conf_entry na_producer_conf_table[] = {
    E("brokers", NA_CONF_STRING, brokers, "127.0.0.1:9092",
      "Kafka bootstrap servers HOST:PORT[,..]", 0, 0),
    E("sources", NA_CONF_STRING, sources, "/etc/newsalert/sources.json",
      "sources JSON file (file mode; re-read when it changes)", 0, 0),
    E("sources_topic", NA_CONF_STRING, sources_topic, NULL,
      "topic mode: poll the feeds of this compacted topic's partitions assigned to this "
      "instance in group group_id (e.g. news.sources)",
      0, 0),
    E("state_topic", NA_CONF_STRING, state_topic, NA_TOPIC_FETCHSTATE,
      "topic mode: compacted topic of per-feed seen-state", 0, 0),
    E("group_id", NA_CONF_STRING, group_id, "newsalert-producer",
      "topic mode: consumer group the instances share", 0, 0),
    E("instance_id", NA_CONF_STRING, instance_id, NULL,
      "name of this instance (X-Newsalert-Instance header, logs); default host-pid", 0,
      0),
    E("state_dir", NA_CONF_STRING, state_dir, "/var/lib/newsalert",
      "folder for the seen-state (seen/: one file per feed; file mode)", 0, 0),
    E("topic", NA_CONF_STRING, topic, NA_TOPIC_ARTICLES, "topic articles go to", 0, 0),
    E("metrics_file", NA_CONF_STRING, metrics_file, NULL,
      "write the metrics (Prometheus text) to this file every 5 s and at exit", 0, 0),
    E("fetch_concurrency", NA_CONF_INT, fetch_concurrency, "32",
      "concurrent feed transfers", 1, 10000),
    E("fetch_per_host", NA_CONF_INT, fetch_per_host, "4",
      "concurrent transfers per host (scheme, host and port); more wait their turn "
      "without a fetch_concurrency slot",
      1, 1000),
    E("fetch_timeout", NA_CONF_DURATION, fetch_timeout_ms, "30s",
      "whole-transfer timeout per feed", 100, 3600000),
    E("fetch_connect_timeout", NA_CONF_DURATION, fetch_connect_timeout_ms, "10s",
      "connect timeout per feed", 100, 600000),
    E("fetch_max_bytes", NA_CONF_INT, fetch_max_bytes, "16777216",
      "largest feed body accepted (bytes)", 1024, NA_MAX_FEED_BYTES),
    E("fetch_max_redirects", NA_CONF_INT, fetch_max_redirects, "5",
      "redirects followed per fetch", 0, 20),
    E("retry_base", NA_CONF_DURATION, retry_base_ms, "30s",
      "backoff after the first failed fetch (doubles per failure)", 100, 86400000),
    E("retry_max", NA_CONF_DURATION, retry_max_ms, "1h",
      "longest backoff after failed fetches", 1000, 86400000),
    E("full_text_wait", NA_CONF_DURATION, full_text_wait_ms, "60s",
      "longest an item of a full_text source waits for its page (queue and transfer); "
      "then it goes out with the feed's text",
      1000, 3600000),
    E("state_grace", NA_CONF_DURATION, state_grace_ms, "7d",
      "how long the state of a feed removed from the sources is kept", 0, 31536000000LL),
    E("flush_timeout", NA_CONF_DURATION, flush_timeout_ms, "30s",
      "how long shutdown waits for Kafka deliveries", 0, 3600000),
    E("user_agent", NA_CONF_STRING, user_agent, NA_HTTP_USER_AGENT,
      "User-Agent sent to feeds", 0, 0),
    E("log_level", NA_CONF_STRING, log_level, "info", "error|warn|info|debug", 0, 0),
    E("create_topics", NA_CONF_BOOL, create_topics, "true",
      "create the topics (partitions, retention, compaction) when missing", 0, 0),
    E("once", NA_CONF_BOOL, once, "false",
      "one round: fetch every feed once, wait for deliveries, exit", 0, 0),
    E("dry_run", NA_CONF_BOOL, dry_run, "false",
      "fetch and parse but produce nothing (no Kafka; file mode; benchmarks)", 0, 0),
    NA_DAEMON_CONF_ENTRIES(struct na_producer_conf, daemon),
    NA_CONF_END,
};
#undef E
#undef C

#define NO_HEAP ((size_t)-1)
#define STATE_SAVE_MS 1000
#define STATE_SOFT_SAVE_MS 60000
#define STATE_SAVE_BUDGET_MS 50
#define STATE_SAVE_SHARE_MS 200
#define SOURCES_CHECK_MS 2000
/* File mode: how often the polled feeds are stamped active (state_grace) */
#define STATE_STAMP_MS 60000
#define METRICS_WRITE_MS 5000
#define STATE_LOAD_TIMEOUT_MS 30000

struct feed {
    struct na_source src; /* owned */
    char *label;          /* src.id as logs, metrics and the status page show it
                             (na_conf_shown_id()) */
    int32_t partition;    /* of its news.sources record; -1 in file mode */
    int64_t due_ms;       /* monotonic */
    size_t heap_idx;      /* NO_HEAP when not scheduled */
    size_t pending;       /* produced messages without a delivery report */
    unsigned errors_in_row;
    bool in_flight; /* a fetch is running */
    bool fetched;   /* at least one fetch completed (for --once) */
    bool failed;    /* something of the current batch was not persisted */
    bool retired;   /* answered 410 for this very source entry */
    bool removed;   /* left the sources; freed once pending is 0 */
    char *new_etag; /* validators to keep once the batch is delivered */
    char *new_lm;
    struct dup_id *dups; /* ids to remember once the batch is delivered */
    size_t dups_cnt;
    na_metric_t *last_success; /* its feed_last_success_seconds, or NULL until used */
    struct host *host;         /* the host whose slot it holds (in_flight) or whose
                                  queue it waits in (host_waiting), else NULL */
    bool host_waiting;
    struct feed *wait_next, *wait_prev; /* its host's queue */
};

/* Per-host limit (fetch_per_host), kept by the scheduler rather than by
 * libcurl: a feed due while its host (origin of the URL polled) has
 * fetch_per_host transfers running waits in the host's queue. It holds no
 * fetch_concurrency slot meanwhile and its transfer, with its timeout,
 * starts only when a slot is free. A host entry lives while it has
 * transfers or waiting feeds. */
struct host {
    char *origin; /* na_url_origin() of the URLs polled */
    size_t running;
    struct feed *wait_head, *wait_tail;
};

/* An item skipped as a duplicate of an earlier item of the same document
 * (same fingerprint, other id): its id is remembered with the batch, once
 * the earlier item is confirmed (never before: a fingerprint noted first
 * would make that item a duplicate too if it failed). */
struct dup_id {
    char id[NA_SHA256_HEX_LEN + 1];
    char fp[NA_SEEN_FP_LEN + 1];
    int rev;
};

struct msg_ctx {
    struct feed *feed;
    int rev;
    char id[NA_SHA256_HEX_LEN + 1];
    char fp[NA_SEEN_FP_LEN + 1];
};

/* An item of a full_text source waiting for its page (fulltext.h). It
 * holds its feed's batch open (pending) until it is produced. */
struct page_item {
    struct feed *feed;
    struct na_article a; /* owned, moved out of the parsed document */
    int rev;
    char fp[NA_SEEN_FP_LEN + 1]; /* of the feed's text: what seen-state keeps */
};

struct producer {
    const struct na_producer_conf *conf;
    struct na_producer_stats *stats;
    volatile sig_atomic_t *running; /* 0: a stop was asked for */
    char instance[256];
    rd_kafka_t *rk;       /* articles (and fetch state) producer; NULL in dry run */
    rd_kafka_t *rk_src;   /* topic mode: sources consumer in the group */
    rd_kafka_t *rk_state; /* topic mode: reader of the state topic */
    na_seen_t *seen;
    na_fetcher_t *fetcher;
    na_fulltext_t *ft;   /* pages of full_text sources */
    int64_t started_ms;  /* monotonic: staleness of feeds never fetched */
    struct feed **feeds; /* sorted by id */
    size_t feeds_cnt, feeds_size;
    struct feed **heap; /* min-heap on due_ms */
    size_t heap_cnt, heap_size;
    struct feed **dead; /* removed feeds waiting for delivery reports */
    size_t dead_cnt, dead_size;
    struct host **hosts; /* sorted by origin */
    size_t hosts_cnt, hosts_size;
    struct stat sources_st;
    int64_t last_sources_check_ms, last_metrics_ms;
    int64_t last_stamp_ms; /* file mode: feeds last stamped active (prune_state()) */
    int64_t save_window_ms, save_spent_ms; /* time spent writing state, per second */
    bool fatal;
};

/* ---------------------------------------------------------------------------
 * metrics and small helpers */

static void feed_labels(const struct feed *f, const char *extra, char *buf, size_t size) {
    char esc[512];
    snprintf(buf, size, "feed=\"%s\"%s%s",
             na_metrics_label_escape(f->label, esc, sizeof(esc)), extra ? "," : "",
             extra ? extra : "");
}

/* A feed URL as logs and the status page show it: no user info, no query
 * (config.h). @returns @p buf. */
static const char *shown_url(const char *url, char *buf, size_t size) {
    char *r = na_conf_redact_url_query(url);
    snprintf(buf, size, "%s", r ? r : "?");
    free(r);
    return buf;
}

/* The feed's newsalert_producer_feed_last_success_seconds gauge (read by
 * the status document every second: the handle is kept). */
static na_metric_t *feed_last_success(struct feed *f) {
    if (!f->last_success) {
        char labels[700];
        feed_labels(f, NULL, labels, sizeof(labels));
        f->last_success = na_metrics_get(
            NA_METRIC_GAUGE, "newsalert_producer_feed_last_success_seconds",
            "Unix time of the last successful fetch.", labels);
    }
    return f->last_success;
}

/* A feed left the sources (or this instance): its series leave /metrics,
 * else they would be exported for ever with frozen values (a removed feed
 * would look ever more stale). The feed's kept handles stay valid. */
static void feed_forget_metrics(const struct feed *f) {
    char labels[700];
    feed_labels(f, NULL, labels, sizeof(labels));
    size_t n = na_metrics_remove_label(labels);
    na_log(NA_LOG_DEBUG, "producer", "feed_metrics_removed", "feed=%s series=%zu",
           na_log_q(f->label), n);
}

/* Per-feed counter: newsalert_producer_<what>_total{feed="<id>"[,extra]}. */
static void feed_inc(const struct feed *f, const char *name, const char *help,
                     const char *extra) {
    char labels[700];
    feed_labels(f, extra, labels, sizeof(labels));
    na_metrics_inc(name, help, labels);
}

static int64_t rand_between(int64_t lo, int64_t hi) {
    if (hi <= lo) {
        return lo;
    }
    return lo + (int64_t)(((uint64_t)random() << 31 ^ (uint64_t)random()) %
                          (uint64_t)(hi - lo + 1));
}

static int64_t jitter(int64_t ms, int pct) {
    int64_t span = ms * pct / 100;
    return ms <= 0 ? 0 : rand_between(ms - span, ms + span);
}

int64_t na_producer_next_delay_ms(int64_t now_wall_ms, int64_t interval_ms, int ttl_min,
                                  uint32_t skip_hours, uint8_t skip_days,
                                  int jitter_pct) {
    const int64_t hour_ms = 3600LL * 1000;
    int64_t delay = interval_ms;
    /* <ttl>: the channel may be cached that long; a day at most, so that a
     * silly value cannot silence a feed. */
    if (ttl_min > 0) {
        int64_t ttl_ms = (int64_t)ttl_min * 60000;
        if (ttl_ms > 24 * hour_ms) {
            ttl_ms = 24 * hour_ms;
        }
        if (ttl_ms > delay) {
            delay = ttl_ms;
        }
    }
    delay = jitter(delay, jitter_pct);
    if ((skip_hours & 0xffffffu) == 0xffffffu || (skip_days & 0x7fu) == 0x7fu) {
        return delay; /* everything skipped: the hint is nonsense, ignore it */
    }
    int64_t at = now_wall_ms + delay;
    for (int i = 0; i < 24 * 8; i++) {
        time_t secs = (time_t)(at / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        if (!(skip_hours >> tm.tm_hour & 1u) && !(skip_days >> tm.tm_wday & 1u)) {
            break;
        }
        at = (at / hour_ms + 1) * hour_ms; /* the start of the next hour */
    }
    return at - now_wall_ms;
}

int64_t na_producer_backoff_ms(unsigned errors_in_row, int64_t base_ms, int64_t max_ms,
                               int64_t retry_after_ms) {
    int64_t delay = base_ms;
    for (unsigned i = 1; i < errors_in_row && delay < max_ms; i++) {
        delay *= 2;
    }
    if (delay > max_ms) {
        delay = max_ms;
    }
    delay = jitter(delay, 20);
    if (retry_after_ms > delay) {
        delay = retry_after_ms;
    }
    return delay;
}

/* ---------------------------------------------------------------------------
 * the schedule: a binary min-heap of feeds on due_ms */

static void heap_swap(struct producer *p, size_t a, size_t b) {
    struct feed *t = p->heap[a];
    p->heap[a] = p->heap[b];
    p->heap[b] = t;
    p->heap[a]->heap_idx = a;
    p->heap[b]->heap_idx = b;
}

static void heap_up(struct producer *p, size_t i) {
    while (i > 0 && p->heap[(i - 1) / 2]->due_ms > p->heap[i]->due_ms) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct producer *p, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->heap_cnt && p->heap[l]->due_ms < p->heap[m]->due_ms) {
            m = l;
        }
        if (r < p->heap_cnt && p->heap[r]->due_ms < p->heap[m]->due_ms) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(p, i, m);
        i = m;
    }
}

static void heap_remove(struct producer *p, struct feed *f) {
    size_t i = f->heap_idx;
    if (i == NO_HEAP) {
        return;
    }
    f->heap_idx = NO_HEAP;
    p->heap_cnt--;
    if (i == p->heap_cnt) {
        return;
    }
    p->heap[i] = p->heap[p->heap_cnt];
    p->heap[i]->heap_idx = i;
    heap_up(p, i);
    heap_down(p, p->heap[i]->heap_idx);
}

/* ---------------------------------------------------------------------------
 * hosts: the per-host limit and queues (struct host) */

static size_t host_pos(const struct producer *p, const char *origin, bool *found) {
    size_t lo = 0, hi = p->hosts_cnt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->hosts[mid]->origin, origin);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

/* The entry of @p url's host, made when missing. @returns borrowed (valid
 * while it has transfers or waiting feeds), NULL on no memory or when
 * @p url has no http(s) origin. */
static struct host *host_get(struct producer *p, const char *url) {
    char *origin = na_url_origin(url);
    struct host *h = NULL;
    bool found;
    size_t i;
    if (!origin) {
        return NULL;
    }
    i = host_pos(p, origin, &found);
    if (found) {
        free(origin);
        return p->hosts[i];
    }
    if (p->hosts_cnt == p->hosts_size) {
        size_t n = p->hosts_size ? p->hosts_size * 2 : 16;
        struct host **v = realloc(p->hosts, n * sizeof(*v));
        if (!v) {
            free(origin);
            return NULL;
        }
        p->hosts = v;
        p->hosts_size = n;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        free(origin);
        return NULL;
    }
    h->origin = origin;
    memmove(&p->hosts[i + 1], &p->hosts[i], (p->hosts_cnt - i) * sizeof(*p->hosts));
    p->hosts[i] = h;
    p->hosts_cnt++;
    return h;
}

/* Forget @p h once nothing runs or waits there. */
static void host_release_if_idle(struct producer *p, struct host *h) {
    bool found;
    size_t i;
    if (h->running || h->wait_head) {
        return;
    }
    i = host_pos(p, h->origin, &found);
    if (found && p->hosts[i] == h) {
        memmove(&p->hosts[i], &p->hosts[i + 1],
                (p->hosts_cnt - i - 1) * sizeof(*p->hosts));
        p->hosts_cnt--;
    }
    free(h->origin);
    free(h);
}

/* Queue @p f (due, out of the heap) for a slot of @p h. */
static void host_wait(struct host *h, struct feed *f) {
    f->host = h;
    f->host_waiting = true;
    f->wait_next = NULL;
    f->wait_prev = h->wait_tail;
    if (h->wait_tail) {
        h->wait_tail->wait_next = f;
    } else {
        h->wait_head = f;
    }
    h->wait_tail = f;
}

/* Unlink @p f, which waits, from its host's queue. */
static void queue_unlink(struct feed *f) {
    struct host *h = f->host;
    if (f->wait_prev) {
        f->wait_prev->wait_next = f->wait_next;
    } else {
        h->wait_head = f->wait_next;
    }
    if (f->wait_next) {
        f->wait_next->wait_prev = f->wait_prev;
    } else {
        h->wait_tail = f->wait_prev;
    }
    f->wait_next = f->wait_prev = NULL;
    f->host_waiting = false;
    f->host = NULL;
}

/* Take @p f out of its host's queue, if it waits in one. */
static void host_unwait(struct producer *p, struct feed *f) {
    struct host *h = f->host;
    if (!f->host_waiting) {
        return;
    }
    queue_unlink(f);
    host_release_if_idle(p, h);
}

static void schedule_at(struct producer *p, struct feed *f, int64_t due_ms);
static void host_slot_free(struct producer *p, struct host *h);

/* The transfer of @p f ended (done or cancelled): free its host slot and
 * hand it to the first feed waiting there, which goes back to the schedule
 * at its own due time, ahead of feeds that became due later. */
static void fetch_end(struct producer *p, struct feed *f) {
    struct host *h = f->host;
    f->in_flight = false;
    if (!h || f->host_waiting) {
        return;
    }
    f->host = NULL;
    host_slot_free(p, h);
}

/* A transfer of @p h ended: hand its slot to the first feed waiting there,
 * which goes back to the schedule at its own due time, ahead of feeds that
 * became due later. */
static void host_slot_free(struct producer *p, struct host *h) {
    if (h->running) {
        h->running--;
    }
    struct feed *w = h->wait_head;
    if (w) {
        queue_unlink(w);
        schedule_at(p, w, w->due_ms);
    }
    host_release_if_idle(p, h);
}

/* Slots for the full-text stage's transfers (fulltext.h): the budget of
 * feeds, fetch_concurrency in all and fetch_per_host per origin. */
static enum na_fulltext_slot page_slot_acquire(void *ctx, const char *url) {
    struct producer *p = ctx;
    struct host *h;
    if (na_fetcher_active(p->fetcher) >= (size_t)p->conf->fetch_concurrency) {
        return NA_FULLTEXT_SLOT_ALL;
    }
    if (!(h = host_get(p, url))) {
        return NA_FULLTEXT_SLOT_ALL; /* no memory: later */
    }
    if (h->running >= (size_t)p->conf->fetch_per_host) {
        host_release_if_idle(p, h);
        return NA_FULLTEXT_SLOT_HOST;
    }
    h->running++;
    return NA_FULLTEXT_SLOT_OK;
}

static void page_slot_release(void *ctx, const char *url) {
    struct producer *p = ctx;
    char *origin = na_url_origin(url);
    bool found = false;
    size_t i = origin ? host_pos(p, origin, &found) : 0;
    free(origin);
    if (found) {
        host_slot_free(p, p->hosts[i]);
    }
}

/* (Re)schedule @p f at monotonic @p due_ms. */
static void schedule_at(struct producer *p, struct feed *f, int64_t due_ms) {
    heap_remove(p, f);
    host_unwait(p, f);
    if (f->removed || f->retired) {
        return;
    }
    if (p->heap_cnt == p->heap_size) {
        size_t n = p->heap_size ? p->heap_size * 2 : 64;
        struct feed **h = realloc(p->heap, n * sizeof(*h));
        if (!h) {
            return; /* dropped from the schedule until the next source change */
        }
        p->heap = h;
        p->heap_size = n;
    }
    f->due_ms = due_ms;
    f->heap_idx = p->heap_cnt;
    p->heap[p->heap_cnt++] = f;
    heap_up(p, f->heap_idx);
}

/* Schedule the next poll @p delay_ms from now and remember it (wall clock)
 * so that a restart or the next owner keeps the rhythm. */
static void schedule_in(struct producer *p, struct feed *f, int64_t delay_ms) {
    if (na_seen_set_int(p->seen, f->src.id, "next_at", na_now_ms() + delay_ms)) {
        na_log(NA_LOG_WARN, "producer", "state_error", "feed=%s err=no memory",
               na_log_q(f->label));
    }
    if (!p->conf->once) {
        schedule_at(p, f, na_mono_ms() + delay_ms);
    }
}

/* ---------------------------------------------------------------------------
 * the feed table, sorted by id */

static size_t feed_pos(const struct producer *p, const char *id, bool *found) {
    size_t lo = 0, hi = p->feeds_cnt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->feeds[mid]->src.id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static struct feed *feed_find(const struct producer *p, const char *id) {
    bool found;
    size_t i = feed_pos(p, id, &found);
    return found ? p->feeds[i] : NULL;
}

static void feed_free(struct feed *f) {
    if (!f) {
        return;
    }
    na_source_cleanup(&f->src);
    free(f->label);
    free(f->new_etag);
    free(f->new_lm);
    free(f->dups);
    free(f);
}

/* The URL polled: the source's, or where a permanent redirect of this very
 * source URL led. @returns borrowed. */
static const char *feed_url(const struct producer *p, const struct feed *f) {
    const char *moved = na_seen_get_str(p->seen, f->src.id, "url");
    const char *from = na_seen_get_str(p->seen, f->src.id, "moved_from");
    return moved && from && !strcmp(from, f->src.url) ? moved : f->src.url;
}

/* First poll of a feed that just appeared: when its state says (so a
 * restart or a handover keeps the rhythm), else soon with a little spread. */
static void schedule_first(struct producer *p, struct feed *f) {
    int64_t now_wall = na_now_ms();
    int64_t next_at = na_seen_get_int(p->seen, f->src.id, "next_at", 0);
    int64_t cap = f->src.interval_ms > p->conf->retry_max_ms ? f->src.interval_ms
                                                             : p->conf->retry_max_ms;
    int64_t delay;
    if (p->conf->once) {
        delay = 0;
    } else if (next_at > now_wall) {
        delay = next_at - now_wall > cap ? cap : next_at - now_wall;
    } else {
        int64_t spread = f->src.interval_ms / 10;
        delay = rand_between(0, spread > 5000 ? 5000 : spread);
    }
    schedule_at(p, f, na_mono_ms() + delay);
}

static void feed_refresh_retired(struct producer *p, struct feed *f) {
    char ubuf[1024];
    const char *r = na_seen_get_str(p->seen, f->src.id, "retired");
    f->retired = r && !strcmp(r, f->src.hash);
    if (r && !f->retired) {
        /* The sources entry changed since the 410: poll it again. */
        if (na_seen_set_str(p->seen, f->src.id, "retired", NULL)) {
            f->retired = true;
        }
        char labels[700];
        feed_labels(f, NULL, labels, sizeof(labels));
        na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_producer_feed_retired",
                                     "1 while a feed is retired (answered 410 Gone).",
                                     labels),
                      0);
        na_log(NA_LOG_INFO, "producer", "feed_unretired", "feed=%s url=%s",
               na_log_q(f->label), na_log_q(shown_url(f->src.url, ubuf, sizeof(ubuf))));
    }
}

/* Bind the state of @p f to its configured URL: when it was learnt from
 * another one (the source's url changed, while running or while stopped),
 * the old URL's validators, move, hints and schedule go, or the new URL
 * would be asked "changed since?" with the old URL's answers and answer 304
 * until it changes after the old date. A fetch of the old URL still
 * running or waiting for its deliveries keeps its articles, not its
 * validators. */
static void feed_bind_url(struct producer *p, struct feed *f) {
    char ubuf[1024];
    bool reset = false;
    if (na_seen_bind_url(p->seen, f->src.id, f->src.url, &reset)) {
        na_log(NA_LOG_ERROR, "producer", "state_error", "feed=%s err=no memory",
               na_log_q(f->label));
        return;
    }
    if (!reset) {
        return;
    }
    if (f->in_flight) {
        na_fetcher_cancel(p->fetcher, f);
        fetch_end(p, f);
    }
    free(f->new_etag);
    free(f->new_lm);
    f->new_etag = f->new_lm = NULL;
    na_log(NA_LOG_INFO, "producer", "feed_url_changed",
           "feed=%s url=%s reason=\"validators, move, ttl, skip hours and schedule of "
           "the old URL forgotten; item ids kept\"",
           na_log_q(f->label), na_log_q(shown_url(f->src.url, ubuf, sizeof(ubuf))));
}

/* Add or update the feed of @p src (taken). */
static na_err_t feed_upsert(struct producer *p, struct na_source *src,
                            int32_t partition) {
    char ubuf[1024];
    bool found;
    size_t i = feed_pos(p, src->id, &found);
    if (found) {
        struct feed *f = p->feeds[i];
        f->partition = partition;
        if (!strcmp(f->src.hash, src->hash)) {
            na_source_cleanup(src);
            return NA_OK;
        }
        na_source_cleanup(&f->src);
        f->src = *src;
        memset(src, 0, sizeof(*src));
        f->errors_in_row = 0;
        feed_bind_url(p, f);
        feed_refresh_retired(p, f);
        if (!f->in_flight) {
            schedule_at(p, f, na_mono_ms());
        }
        na_log(NA_LOG_INFO, "producer", "feed_changed", "feed=%s url=%s",
               na_log_q(f->label), na_log_q(shown_url(f->src.url, ubuf, sizeof(ubuf))));
        return NA_OK;
    }
    if (p->feeds_cnt == p->feeds_size) {
        size_t n = p->feeds_size ? p->feeds_size * 2 : 64;
        struct feed **v = realloc(p->feeds, n * sizeof(*v));
        if (!v) {
            na_source_cleanup(src);
            return NA_ERR_NOMEM;
        }
        p->feeds = v;
        p->feeds_size = n;
    }
    struct feed *f = calloc(1, sizeof(*f));
    if (!f || !(f->label = na_conf_shown_id(src->id))) {
        free(f);
        na_source_cleanup(src);
        return NA_ERR_NOMEM;
    }
    f->src = *src;
    memset(src, 0, sizeof(*src));
    f->partition = partition;
    f->heap_idx = NO_HEAP;
    memmove(&p->feeds[i + 1], &p->feeds[i], (p->feeds_cnt - i) * sizeof(*p->feeds));
    p->feeds[i] = f;
    p->feeds_cnt++;
    feed_bind_url(p, f);
    feed_refresh_retired(p, f);
    if (f->retired) {
        f->fetched = true; /* nothing to do in a --once round */
        na_log(NA_LOG_WARN, "producer", "feed_retired_skipped",
               "feed=%s url=%s reason=\"answered 410 Gone; change its sources entry to "
               "poll it again\"",
               na_log_q(f->label), na_log_q(shown_url(f->src.url, ubuf, sizeof(ubuf))));
    }
    schedule_first(p, f);
    return NA_OK;
}

static void feed_remove(struct producer *p, struct feed *f) {
    bool found;
    size_t i = feed_pos(p, f->src.id, &found);
    if (!found || p->feeds[i] != f) {
        return;
    }
    if (p->ft) {
        /* its items waiting for pages go out now, with the feed's text */
        na_fulltext_cancel(p->ft, f, "cancelled");
    }
    if (f->in_flight) {
        na_fetcher_cancel(p->fetcher, f);
        fetch_end(p, f);
    }
    heap_remove(p, f);
    host_unwait(p, f);
    memmove(&p->feeds[i], &p->feeds[i + 1], (p->feeds_cnt - i - 1) * sizeof(*p->feeds));
    p->feeds_cnt--;
    f->removed = true;
    feed_forget_metrics(f);
    if (!f->pending) {
        feed_free(f);
        return;
    }
    if (p->dead_cnt == p->dead_size) {
        size_t n = p->dead_size ? p->dead_size * 2 : 16;
        struct feed **v = realloc(p->dead, n * sizeof(*v));
        if (!v) {
            return; /* leaked rather than freed under a pending delivery */
        }
        p->dead = v;
        p->dead_size = n;
    }
    p->dead[p->dead_cnt++] = f;
}

static void reap_dead(struct producer *p) {
    for (size_t i = 0; i < p->dead_cnt;) {
        if (p->dead[i]->pending) {
            i++;
            continue;
        }
        feed_free(p->dead[i]);
        p->dead[i] = p->dead[--p->dead_cnt];
    }
}

/* ---------------------------------------------------------------------------
 * Kafka: fetch state records, articles, delivery reports */

/* Topic mode: publish a feed's whole state to the state topic, same
 * partition number as its source record, so the next owner finds it. */
static void publish_state(struct producer *p, struct feed *f) {
    if (!p->rk_src || !p->rk || f->partition < 0) {
        return;
    }
    size_t len = 0;
    char *state = na_seen_feed_dump(p->seen, f->src.id, &len);
    rd_kafka_resp_err_t kerr;
    if (!state) {
        return;
    }
    /* F_FREE: librdkafka frees state once sent; on failure it stays ours. */
    kerr = rd_kafka_producev(
        p->rk, RD_KAFKA_V_TOPIC(p->conf->state_topic), RD_KAFKA_V_PARTITION(f->partition),
        RD_KAFKA_V_KEY(f->src.id, strlen(f->src.id)), RD_KAFKA_V_VALUE(state, len),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(NULL),
        RD_KAFKA_V_END);
    if (kerr) {
        free(state);
        na_log(NA_LOG_ERROR, "producer", "state_publish_failed", "feed=%s err=%s",
               na_log_q(f->label), na_log_q(rd_kafka_err2str(kerr)));
        na_metrics_inc("newsalert_producer_state_errors_total",
                       "Fetch state records Kafka did not take or confirm.", NULL);
    }
}

/* Topic mode: the seen-state of a feed that left this instance (tombstone,
 * revoked partition) was dropped or handed over; its late delivery reports
 * must not make it again, for nothing would ever prune it. File mode keeps
 * a removed feed's state for state_grace: its reports still count. */
static bool state_gone(const struct producer *p, const struct feed *f) {
    return f->removed && p->rk_src;
}

static void finish_batch(struct producer *p, struct feed *f) {
    na_err_t err = NA_OK;
    if (state_gone(p, f)) {
        /* nothing of its state is kept */
    } else if (f->failed) {
        /* Something of this batch was not persisted: forget the validators so
         * the next fetch is unconditional and the item is produced again. */
        err = na_seen_set_validators(p->seen, f->src.id, NULL, NULL);
    } else {
        err = na_seen_set_validators(p->seen, f->src.id, f->new_etag, f->new_lm);
    }
    for (size_t i = 0; !err && !f->failed && !state_gone(p, f) && i < f->dups_cnt; i++) {
        err =
            na_seen_put(p->seen, f->src.id, f->dups[i].id, f->dups[i].fp, f->dups[i].rev);
    }
    if (err) {
        na_log(NA_LOG_ERROR, "producer", "state_error", "feed=%s err=%s",
               na_log_q(f->label), na_err2str(err));
    }
    free(f->dups);
    f->dups = NULL;
    f->dups_cnt = 0;
    free(f->new_etag);
    free(f->new_lm);
    f->new_etag = f->new_lm = NULL;
    f->failed = false;
    if (!f->removed) {
        publish_state(p, f);
    }
}

static void delivered_ok(struct producer *p, struct msg_ctx *ctx) {
    struct feed *f = ctx->feed;
    p->stats->delivered++;
    na_metrics_inc("newsalert_producer_articles_delivered_total",
                   "Articles confirmed by Kafka.", NULL);
    if (!state_gone(p, f) &&
        na_seen_put(p->seen, f->src.id, ctx->id, ctx->fp, ctx->rev)) {
        f->failed = true;
    }
}

static void batch_done_one(struct producer *p, struct feed *f) {
    if (--f->pending == 0) {
        finish_batch(p, f);
    }
}

/* Delivery reports run inside rd_kafka_poll()/rd_kafka_flush(), on the main
 * thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    struct producer *p = opaque;
    struct msg_ctx *ctx = rkm->_private;

    if (!ctx) { /* a fetch state record */
        if (rkm->err) {
            na_log(NA_LOG_ERROR, "producer", "state_delivery_failed", "topic=%s err=%s",
                   na_log_q(rd_kafka_topic_name(rkm->rkt)),
                   na_log_q(rd_kafka_err2str(rkm->err)));
            na_metrics_inc("newsalert_producer_state_errors_total",
                           "Fetch state records Kafka did not take or confirm.", NULL);
        }
        return;
    }
    struct feed *f = ctx->feed;
    if (rkm->err) {
        p->stats->delivery_errors++;
        na_metrics_inc("newsalert_producer_delivery_errors_total",
                       "Articles Kafka did not confirm.", NULL);
        f->failed = true;
        na_log(NA_LOG_ERROR, "producer", "delivery_failed",
               "feed=%s article=%s err=%s persisted=%d", na_log_q(f->label), ctx->id,
               na_log_q(rd_kafka_err2str(rkm->err)), (int)rd_kafka_message_status(rkm));
        if (na_kafka_classify(rkm->err, 0) == NA_OUTCOME_FATAL) {
            p->fatal = true;
        }
    } else {
        delivered_ok(p, ctx);
        na_log(NA_LOG_DEBUG, "producer", "delivered",
               "feed=%s article=%s rev=%d "
               "partition=%d offset=%lld",
               na_log_q(f->label), ctx->id, ctx->rev, (int)rkm->partition,
               (long long)rkm->offset);
    }
    batch_done_one(p, f);
    free(ctx);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    struct producer *p = opaque;
    char fatal[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        na_log(NA_LOG_ERROR, "producer", "kafka_fatal", "err=%s", na_log_q(fatal));
        p->fatal = true;
        return;
    }
    na_log(NA_LOG_WARN, "producer", "kafka_error", "client=%s err=%s reason=%s",
           rd_kafka_name(rk), na_log_q(rd_kafka_err2name((rd_kafka_resp_err_t)err)),
           na_log_q(reason));
}

bool na_producer_bound_published(struct na_article *a) {
    if (a->published_at == NA_TIME_UNKNOWN || a->fetched_at == NA_TIME_UNKNOWN ||
        a->published_at <= a->fetched_at) {
        return false;
    }
    a->published_at = a->fetched_at;
    return true;
}

/* Message timestamp per DESIGN.md: the published time when known, never
 * later than the fetch, never so old that retention would delete it before
 * anyone consumed it. */
int64_t na_producer_record_ts_ms(const struct na_article *a) {
    int64_t fetched_ms = a->fetched_at * 1000;
    int64_t floor_ms = fetched_ms - (NA_ARTICLES_RETENTION_MS - 24LL * 3600 * 1000);
    int64_t ts = a->published_at == NA_TIME_UNKNOWN ? fetched_ms : a->published_at * 1000;
    if (ts > fetched_ms) {
        ts = fetched_ms;
    }
    if (ts < floor_ms) {
        ts = floor_ms;
    }
    return ts;
}

/* @p ft_status: the "full-text" header ("ok", "failed", "disallowed") or
 * NULL for none; @p ft_reason: "full-text-reason" or NULL. */
static na_err_t produce_article(struct producer *p, struct feed *f,
                                const struct na_article *a, const char *fp, int rev,
                                const char *ft_status, const char *ft_reason) {
    char *json = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    struct msg_ctx *ctx = calloc(1, sizeof(*ctx));
    rd_kafka_resp_err_t kerr;
    char revbuf[24];

    if (!ctx) {
        return NA_ERR_NOMEM;
    }
    ctx->feed = f;
    ctx->rev = rev;
    memcpy(ctx->id, a->id, sizeof(ctx->id));
    snprintf(ctx->fp, sizeof(ctx->fp), "%s", fp ? fp : "");
    if (!p->rk) { /* dry run: as if Kafka had confirmed it at once */
        p->stats->produced++;
        f->pending++;
        delivered_ok(p, ctx);
        f->pending--;
        free(ctx);
        return NA_OK;
    }
    if (!(json = na_article_to_json(a))) {
        free(ctx);
        return NA_ERR_NOMEM;
    }
    snprintf(revbuf, sizeof(revbuf), "%d", rev);
    hdrs = rd_kafka_headers_new(6);
    rd_kafka_header_add(hdrs, "content-type", -1, NA_ARTICLE_CONTENT_TYPE, -1);
    rd_kafka_header_add(hdrs, "schema", -1, NA_ARTICLE_SCHEMA, -1);
    rd_kafka_header_add(hdrs, "source", -1, f->src.id, -1);
    rd_kafka_header_add(hdrs, "revision", -1, revbuf, -1);
    if (ft_status) {
        rd_kafka_header_add(hdrs, "full-text", -1, ft_status, -1);
    }
    if (ft_reason) {
        rd_kafka_header_add(hdrs, "full-text-reason", -1, ft_reason, -1);
    }
    for (;;) {
        /* F_FREE: librdkafka frees json (malloc'd by jansson) once sent; on
         * failure ownership stays with us, as does the headers list. */
        kerr = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->conf->topic),
                                 RD_KAFKA_V_KEY(a->id, NA_SHA256_HEX_LEN),
                                 RD_KAFKA_V_VALUE(json, strlen(json)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_TIMESTAMP(na_producer_record_ts_ms(a)),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(ctx),
                                 RD_KAFKA_V_END);
        /* A full queue waits for deliveries, but not past a stop: what is
         * not produced is not noted as seen, and is fetched again. */
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || !*p->running) {
            break;
        }
        rd_kafka_poll(p->rk, 100);
    }
    if (kerr) {
        na_log(NA_LOG_ERROR, "producer", "produce_failed", "feed=%s article=%s err=%s",
               na_log_q(f->label), a->id, na_log_q(rd_kafka_err2str(kerr)));
        rd_kafka_headers_destroy(hdrs);
        free(json);
        free(ctx);
        return NA_ERR_KAFKA;
    }
    f->pending++;
    p->stats->produced++;
    na_metrics_inc("newsalert_producer_articles_produced_total",
                   "Articles handed to Kafka.", NULL);
    return NA_OK;
}

/* ---------------------------------------------------------------------------
 * fetch results */

/* An item dated after its fetch is published at the fetch time (article/v1
 * times are never in the future: the consumer's story clock reads them).
 * Only items about to be produced come here, so a feed that keeps a
 * future date logs it once per publication, not on every poll. */
static void bound_published(struct feed *f, struct na_article *a) {
    char was[NA_RFC3339_LEN], fetched[NA_RFC3339_LEN];
    int64_t published = a->published_at;
    if (!na_producer_bound_published(a)) {
        return;
    }
    feed_inc(f, "newsalert_producer_future_dated_total",
             "Items dated after their fetch, published at the fetch time instead.", NULL);
    na_time_format_rfc3339(published, was);
    na_time_format_rfc3339(a->fetched_at, fetched);
    /* A few seconds ahead is a feed server's clock; more is a wrong date. */
    na_log(
        published - a->fetched_at > 300 ? NA_LOG_WARN : NA_LOG_DEBUG, "producer",
        "future_dated", "feed=%s article=%s published_at=%s fetched_at=%s ahead_s=%lld",
        na_log_q(f->label), a->id, was, fetched, (long long)(published - a->fetched_at));
}

/* Count and log what an item of a full_text source got: @p status "ok",
 * "failed" or "disallowed", @p reason NULL for ok. */
static void count_full_text(struct producer *p, struct feed *f,
                            const struct na_article *a, const char *status,
                            const char *reason, const char *detail, const char *from) {
    char extra[96];
    char ubuf[1024];
    snprintf(extra, sizeof(extra), "result=\"%s\"", status);
    feed_inc(
        f, "newsalert_producer_full_text_total",
        "Items of full_text sources, by what their page gave: ok (its story), failed "
        "or disallowed (robots.txt; both keep the feed's text).",
        extra);
    if (!reason) {
        p->stats->full_text_ok++;
        na_log(NA_LOG_DEBUG, "fulltext", "full_text",
               "feed=%s article=%s chars=%zu from=%s", na_log_q(f->label), a->id,
               a->content ? strlen(a->content) : 0, from ? from : "-");
        return;
    }
    p->stats->full_text_failed++;
    p->stats->full_text_disallowed += !strcmp(status, "disallowed");
    snprintf(extra, sizeof(extra), "reason=\"%s\"", reason);
    feed_inc(f, "newsalert_producer_full_text_failures_total",
             "Items that went out with the feed's text, by reason.", extra);
    na_log(NA_LOG_INFO, "fulltext", "full_text_failed",
           "feed=%s article=%s url=%s status=%s reason=%s err=%s", na_log_q(f->label),
           a->id, na_log_q(shown_url(a->url ? a->url : "", ubuf, sizeof(ubuf))), status,
           reason, na_log_q(detail ? detail : "-"));
}

/* An item's page is in (fulltext.h): produce the item, with the page's
 * story or with the feed's text. The seen-state keeps the fingerprint of
 * the feed's text, so the page never makes an item new or edited. Runs on
 * the main thread, inside na_fulltext_run(), na_fulltext_cancel() or
 * na_fetcher_run(). */
static void page_done(void *item, const struct na_fulltext_result *res, void *ctx) {
    struct producer *p = ctx;
    struct page_item *pi = item;
    struct feed *f = pi->feed;
    const char *status = res->status == NA_FULLTEXT_OK           ? "ok"
                         : res->status == NA_FULLTEXT_DISALLOWED ? "disallowed"
                                                                 : "failed";
    const char *reason = res->status == NA_FULLTEXT_OK ? NULL : res->reason;

    if (res->status == NA_FULLTEXT_OK && na_fulltext_apply(&pi->a, res->page)) {
        status = "failed";
        reason = "nomem";
    }
    count_full_text(p, f, &pi->a, status, reason, res->detail,
                    res->page && !reason ? res->page->from : NULL);
    bound_published(f, &pi->a);
    if (produce_article(p, f, &pi->a, pi->fp, pi->rev, status, reason)) {
        f->failed = true;
    }
    na_article_cleanup(&pi->a);
    free(pi);
    batch_done_one(p, f);
}

/* Hand @p a (moved out on success) to the full-text stage.
 * @returns NA_OK: page_done() will produce it; NA_ERR_INVALID (no http(s)
 *          link) or NA_ERR_NOMEM: it is still the caller's. */
static na_err_t want_page(struct producer *p, struct feed *f, struct na_article *a,
                          const char *fp, int rev) {
    struct page_item *pi;
    na_err_t err;
    if (!a->url) {
        return NA_ERR_INVALID;
    }
    if (!(pi = calloc(1, sizeof(*pi)))) {
        return NA_ERR_NOMEM;
    }
    pi->feed = f;
    pi->a = *a;
    pi->rev = rev;
    snprintf(pi->fp, sizeof(pi->fp), "%s", fp ? fp : "");
    struct na_fulltext_req req = {
        .url = a->url,
        .allow_private = f->src.allow_private_addresses,
        .headers = f->src.headers,
        .headers_cnt = f->src.headers_cnt,
        .headers_origin = f->src.url,
        .owner = f,
        .item = pi,
    };
    if ((err = na_fulltext_submit(p->ft, &req))) {
        free(pi);
        return err;
    }
    na_article_init(a); /* the item's strings are pi's now */
    f->pending++;       /* the batch stays open until page_done() */
    return NA_OK;
}

/* Dedup per docs/producer.md: id (canonical URL, or feed URL + GUID), then
 * content fingerprint. */
static void handle_items(struct producer *p, struct feed *f, struct na_feed *doc,
                         size_t *fresh) {
    int64_t now_s = na_now_ms() / 1000;
    char(*fps)[NA_SEEN_FP_LEN + 1] = calloc(doc->items_cnt + 1, sizeof(*fps));
    *fresh = 0;
    if (!fps) {
        f->failed = true;
        return;
    }
    for (size_t i = 0; i < doc->items_cnt; i++) {
        struct na_article *a = &doc->items[i];
        free(a->source_id);
        free(a->source_name);
        free(a->source_feed_url);
        a->source_id = na_strdup(f->src.id);
        a->source_name = na_strdup(f->src.name);
        a->source_feed_url = na_strdup(f->src.url);
        a->fetched_at = now_s;
        if (a->url) {
            /* the fragment is the parser's to keep (feed.h) */
            char *canon = na_url_canonical_ex(a->url, NA_URL_KEEP_FRAGMENT);
            if (canon) {
                free(a->url);
                a->url = canon;
            }
        }
        if (na_article_set_id(a) || na_seen_fingerprint(a, fps[i])) {
            /* no memory: the document is read again at the next poll
             * (nothing of it was noted as seen) */
            f->failed = true;
            free(fps);
            return;
        }
    }
    /* Every id this document carries first, so that no put below evicts
     * one of them: an evicted id still in the feed would be new again. */
    na_seen_fetch_begin(p->seen, f->src.id);
    for (size_t i = 0; i < doc->items_cnt; i++) {
        if (na_seen_touch(p->seen, f->src.id, doc->items[i].id, fps[i])) {
            f->failed = true; /* as above */
            free(fps);
            return;
        }
    }
    free(f->dups); /* of a batch that never finished: none */
    f->dups = NULL;
    f->dups_cnt = 0;
    for (size_t i = 0; i < doc->items_cnt; i++) {
        struct na_article *a = &doc->items[i];
        bool same_id = false, same_fp = false;
        int rev = 1;
        p->stats->items++;
        for (size_t j = 0; j < i && !same_id; j++) {
            same_id = !strcmp(doc->items[j].id, a->id);
            same_fp |= fps[i][0] && !strcmp(fps[j], fps[i]);
        }
        enum na_seen_verdict v =
            same_id ? NA_SEEN_SAME
                    : na_seen_check(p->seen, f->src.id, a->id, fps[i], &rev);
        if (same_fp && (v == NA_SEEN_NEW || v == NA_SEEN_EDITED)) {
            /* The text of an earlier item of this document under another
             * id: a duplicate, remembered with the batch (struct dup_id). */
            p->stats->skipped_dup++;
            feed_inc(f, "newsalert_producer_duplicates_total",
                     "Items skipped: new id, known content fingerprint.", NULL);
            na_log(NA_LOG_DEBUG, "producer", "duplicate", "feed=%s article=%s fp=%s",
                   na_log_q(f->label), a->id, fps[i]);
            if (!f->dups && !(f->dups = calloc(doc->items_cnt, sizeof(*f->dups)))) {
                f->failed = true; /* read again, unconditionally */
                continue;
            }
            struct dup_id *d = &f->dups[f->dups_cnt++];
            memcpy(d->id, a->id, sizeof(d->id));
            memcpy(d->fp, fps[i], sizeof(d->fp));
            d->rev = v == NA_SEEN_EDITED ? rev - 1 : 1; /* not produced again */
            continue;
        }
        switch (v) {
        case NA_SEEN_FAILED:
            /* no memory: neither produced nor noted; the document is read
             * again at the next poll */
            f->failed = true;
            continue;
        case NA_SEEN_SAME:
            p->stats->skipped_seen++;
            continue;
        case NA_SEEN_DUPLICATE:
            /* Same text under a new GUID or link: not new. Remember the new
             * id too, so that it stays known. */
            p->stats->skipped_dup++;
            feed_inc(f, "newsalert_producer_duplicates_total",
                     "Items skipped: new id, known content fingerprint.", NULL);
            na_log(NA_LOG_DEBUG, "producer", "duplicate", "feed=%s article=%s fp=%s",
                   na_log_q(f->label), a->id, fps[i]);
            if (na_seen_put(p->seen, f->src.id, a->id, fps[i], 1)) {
                f->failed = true;
            }
            continue;
        case NA_SEEN_EDITED:
            p->stats->updates++;
            feed_inc(f, "newsalert_producer_updates_total",
                     "Edited items produced again under the same id.", NULL);
            na_log(NA_LOG_INFO, "producer", "article_updated",
                   "feed=%s article=%s rev=%d", na_log_q(f->label), a->id, rev);
            break;
        case NA_SEEN_NEW:
            break;
        }
        bound_published(f, a);
        if (p->ft &&
            na_fulltext_wanted(f->src.full_text, a, f->src.full_text_min_chars)) {
            na_err_t err = want_page(p, f, a, fps[i], rev);
            if (!err) {
                (*fresh)++;
                continue;
            }
            const char *reason = !a->url                 ? "no_link"
                                 : err == NA_ERR_INVALID ? "not_http"
                                                         : "nomem";
            count_full_text(p, f, a, "failed", reason, NULL, NULL);
            if (produce_article(p, f, a, fps[i], rev, "failed", reason)) {
                f->failed = true;
            } else {
                (*fresh)++;
            }
            continue;
        }
        if (produce_article(p, f, a, fps[i], rev, NULL, NULL)) {
            f->failed = true;
        } else {
            (*fresh)++;
        }
    }
    free(fps);
}

static void retire(struct producer *p, struct feed *f, const struct na_fetch_res *res) {
    char ubuf[1024];
    char labels[700];
    f->retired = true;
    f->fetched = true;
    heap_remove(p, f);
    p->stats->retired++;
    if (na_seen_set_str(p->seen, f->src.id, "retired", f->src.hash)) {
        na_log(NA_LOG_ERROR, "producer", "state_error", "feed=%s err=no memory",
               na_log_q(f->label));
    }
    feed_inc(f, "newsalert_producer_feeds_retired_total", "Feeds retired on 410 Gone.",
             NULL);
    feed_labels(f, NULL, labels, sizeof(labels));
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_producer_feed_retired",
                                 "1 while a feed is retired (answered 410 Gone).",
                                 labels),
                  1);
    na_log(NA_LOG_ERROR, "fetch", "feed_retired",
           "feed=%s url=%s status=410 reason=\"the feed is gone; not polled again until "
           "its sources entry changes\"",
           na_log_q(f->label),
           na_log_q(shown_url(res->effective_url ? res->effective_url : f->src.url, ubuf,
                              sizeof(ubuf))));
    publish_state(p, f);
}

static void note_moved(struct producer *p, struct feed *f,
                       const struct na_fetch_res *res) {
    char ubuf[1024];
    char ubuf2[1024];
    char *from = NULL;
    if (!res->permanent_url || !strcmp(res->permanent_url, feed_url(p, f))) {
        return;
    }
    /* A copy: feed_url() may be the stored URL that is about to change. */
    if (!(from = na_strdup(feed_url(p, f))) ||
        na_seen_set_str(p->seen, f->src.id, "url", res->permanent_url) ||
        na_seen_set_str(p->seen, f->src.id, "moved_from", f->src.url)) {
        free(from);
        return;
    }
    p->stats->moved++;
    feed_inc(f, "newsalert_producer_feeds_moved_total",
             "Permanent redirects (301/308) whose target is now polled.", NULL);
    na_log(NA_LOG_WARN, "fetch", "feed_moved", "feed=%s from=%s to=%s",
           na_log_q(f->label), na_log_q(shown_url(from, ubuf, sizeof(ubuf))),
           na_log_q(shown_url(res->permanent_url, ubuf2, sizeof(ubuf2))));
    free(from);
    publish_state(p, f);
}

static void fetch_failed(struct producer *p, struct feed *f,
                         const struct na_fetch_res *res, const char *reason,
                         const char *detail) {
    char ubuf[1024];
    char extra[64];
    int64_t ra = na_http_retry_after_ms(res->retry_after, na_now_ms() / 1000);
    p->stats->fetch_errors++;
    snprintf(extra, sizeof(extra), "reason=\"%s\"", reason);
    feed_inc(f, "newsalert_producer_fetch_errors_total", "Failed fetches.", extra);
    f->errors_in_row++;
    int64_t delay = na_producer_backoff_ms(f->errors_in_row, p->conf->retry_base_ms,
                                           p->conf->retry_max_ms, ra);
    schedule_in(p, f, delay);
    na_log(NA_LOG_WARN, "fetch", "fetch_error",
           "feed=%s url=%s reason=%s status=%ld err=%s errors_in_row=%u retry_in_ms=%lld "
           "ms=%lld",
           na_log_q(f->label), na_log_q(shown_url(feed_url(p, f), ubuf, sizeof(ubuf))),
           reason, res->status, na_log_q(detail), f->errors_in_row, (long long)delay,
           (long long)res->elapsed_ms);
}

static void on_fetched(struct na_fetch_res *res, void *opaque) {
    char ubuf[1024];
    struct producer *p = opaque;
    struct feed *f = res->opaque;
    struct na_feed doc;
    char errstr[512];
    na_outcome_t outcome = na_http_classify(res->code, res->status);

    fetch_end(p, f);
    f->fetched = true;
    p->stats->fetches++;
    feed_inc(f, "newsalert_producer_fetches_total", "Feed fetches completed.", NULL);
    if (res->code == CURLE_OK && res->status == 304) {
        p->stats->not_modified++;
        feed_inc(f, "newsalert_producer_not_modified_total", "Fetches answered 304.",
                 NULL);
        /* Unchanged is a success: the feed is up and we have its latest. */
        na_metric_set(feed_last_success(f), (double)na_now_ms() / 1000.0);
        note_moved(p, f, res);
        f->errors_in_row = 0;
        schedule_in(p, f,
                    na_producer_next_delay_ms(
                        na_now_ms(), f->src.interval_ms,
                        (int)na_seen_get_int(p->seen, f->src.id, "ttl", 0),
                        (uint32_t)na_seen_get_int(p->seen, f->src.id, "skip_hours", 0),
                        (uint8_t)na_seen_get_int(p->seen, f->src.id, "skip_days", 0),
                        10));
        na_log(NA_LOG_DEBUG, "fetch", "not_modified", "feed=%s ms=%lld",
               na_log_q(f->label), (long long)res->elapsed_ms);
        return;
    }
    if (res->code == CURLE_OK && res->status == 410) {
        retire(p, f, res);
        return;
    }
    if (outcome != NA_OUTCOME_OK || res->too_large) {
        fetch_failed(p, f, res, na_fetch_reason(res),
                     res->errstr[0] ? res->errstr : "HTTP error status");
        return;
    }
    na_feed_init(&doc);
    na_err_t err = na_feed_parse(res->body, res->body_len, res->effective_url, &doc,
                                 errstr, sizeof(errstr));
    if (err) {
        p->stats->parse_errors++;
        feed_inc(f, "newsalert_producer_parse_errors_total",
                 "Feed documents that did not parse.", NULL);
        f->errors_in_row++;
        int64_t delay = na_producer_backoff_ms(f->errors_in_row, p->conf->retry_base_ms,
                                               p->conf->retry_max_ms, -1);
        schedule_in(p, f, delay);
        na_log(NA_LOG_WARN, "fetch", "feed_parse_error",
               "feed=%s url=%s bytes=%zu err=%s retry_in_ms=%lld", na_log_q(f->label),
               na_log_q(shown_url(feed_url(p, f), ubuf, sizeof(ubuf))), res->body_len,
               na_log_q(errstr), (long long)delay);
        return;
    }
    note_moved(p, f, res);
    f->errors_in_row = 0;
    na_metric_set(feed_last_success(f), (double)na_now_ms() / 1000.0);
    /* Hints of the document (RSS ttl, skipHours, skipDays) shape the schedule
     * and are kept with the state so that they hold after a restart. */
    if (na_seen_set_int(p->seen, f->src.id, "ttl", doc.ttl_min) ||
        na_seen_set_int(p->seen, f->src.id, "skip_hours", doc.skip_hours) ||
        na_seen_set_int(p->seen, f->src.id, "skip_days", doc.skip_days)) {
        f->failed = true;
    }
    schedule_in(p, f,
                na_producer_next_delay_ms(na_now_ms(), f->src.interval_ms, doc.ttl_min,
                                          doc.skip_hours, doc.skip_days, 10));
    free(f->new_etag);
    free(f->new_lm);
    f->new_etag = na_strdup(res->etag);
    f->new_lm = na_strdup(res->last_modified);
    f->pending++; /* hold the batch open while producing */
    size_t fresh = 0;
    handle_items(p, f, &doc, &fresh);
    na_log(NA_LOG_INFO, "fetch", "fetched",
           "feed=%s format=%s status=%ld bytes=%zu items=%zu new=%zu dropped=%zu ms=%lld",
           na_log_q(f->label), doc.format ? doc.format : "?", res->status, res->body_len,
           doc.items_cnt, fresh, doc.items_dropped, (long long)res->elapsed_ms);
    batch_done_one(p, f);
    na_feed_cleanup(&doc);
}

/* Start the due fetches while fetch_concurrency allows; a feed whose host
 * already runs fetch_per_host transfers waits in the host's queue (struct
 * host) instead, so that its timeout starts with its transfer. */
static void start_due_fetches(struct producer *p) {
    int64_t now = na_mono_ms();
    while (p->heap_cnt && p->heap[0]->due_ms <= now &&
           na_fetcher_active(p->fetcher) < (size_t)p->conf->fetch_concurrency) {
        struct feed *f = p->heap[0];
        heap_remove(p, f);
        if (f->pending || f->in_flight) {
            /* The last batch is not confirmed yet: its validators are not
             * stored, so wait for it. */
            schedule_at(p, f, now + 200);
            continue;
        }
        struct na_fetch_req req = {
            .url = feed_url(p, f),
            .headers = f->src.headers,
            .headers_cnt = f->src.headers_cnt,
            .headers_origin = f->src.url,
            .allow_private =
                f->src.allow_private_redirects || f->src.allow_private_addresses,
            .etag = na_seen_validator(p->seen, f->src.id, "etag"),
            .last_modified = na_seen_validator(p->seen, f->src.id, "last_modified"),
            .opaque = f,
        };
        /* A moved feed's URL came from a redirect: checked like one. */
        req.check_first = strcmp(req.url, f->src.url) != 0;
        struct host *h = host_get(p, req.url);
        if (h && h->running >= (size_t)p->conf->fetch_per_host) {
            host_wait(h, f);
            continue;
        }
        if (na_fetcher_add(p->fetcher, &req)) {
            if (h) {
                host_release_if_idle(p, h);
            }
            schedule_at(p, f, now + 1000);
            continue;
        }
        f->in_flight = true;
        if (h) { /* without a host entry (no memory), unlimited but not lost */
            f->host = h;
            h->running++;
        }
    }
}

static bool round_done(const struct producer *p) {
    for (size_t i = 0; i < p->feeds_cnt; i++) {
        const struct feed *f = p->feeds[i];
        if (!f->fetched || f->in_flight || f->pending) {
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------
 * file mode: the sources file, re-read when it changes */

struct active_ctx {
    const struct producer *p;
    const struct na_sources *s; /* or NULL */
};

/* Polled now, or in the sources about to be applied. */
static int feed_or_source_active(const char *id, void *ctx) {
    const struct active_ctx *ac = ctx;
    return feed_find(ac->p, id) || (ac->s && na_producer_source_find(ac->s, id) >= 0);
}

/* File mode: stamp the feeds polled now (and those of @p s, NULL: none) as
 * active, and forget the state of feeds out of the sources for longer than
 * state_grace. The grace counts from the last stamp, so it runs before a
 * feed is removed and every STATE_STAMP_MS (a restart after a long run
 * must not find a removed feed's stamp as old as its last sources
 * change). */
static void prune_state(struct producer *p, const struct na_sources *s) {
    struct active_ctx ac = {p, s};
    p->last_stamp_ms = na_mono_ms();
    size_t dropped = na_seen_prune(p->seen, feed_or_source_active, &ac,
                                   na_now_ms() / 1000, p->conf->state_grace_ms / 1000);
    if (dropped) {
        na_log(NA_LOG_INFO, "producer", "state_pruned", "feeds=%zu", dropped);
    }
}

/* Make the feeds those of @p s (borrowed): new ones start, changed ones
 * change, removed ones stop. */
static na_err_t apply_sources(struct producer *p, const struct na_sources *s,
                              char *errstr, size_t errstr_size) {
    na_err_t err = NA_OK;
    /* Feeds gone from the file stop now; their state waits state_grace,
     * from now. */
    prune_state(p, s);
    for (size_t i = p->feeds_cnt; i-- > 0;) {
        bool keep = na_producer_source_find(s, p->feeds[i]->src.id) >= 0;
        if (!keep) {
            na_log(NA_LOG_INFO, "producer", "feed_removed", "feed=%s",
                   na_log_q(p->feeds[i]->label));
            feed_remove(p, p->feeds[i]);
        }
    }
    for (size_t j = 0; j < s->cnt; j++) {
        if ((err = feed_upsert(p, &s->v[j], -1))) {
            snprintf(errstr, errstr_size, "no memory for the sources");
            break;
        }
    }
    return err;
}

static na_err_t apply_sources_file(struct producer *p, char *errstr, size_t errstr_size) {
    struct na_sources s;
    struct stat st;
    na_err_t err;
    if (stat(p->conf->sources, &st)) {
        snprintf(errstr, errstr_size, "%s: %s", p->conf->sources, strerror(errno));
        return NA_ERR_IO;
    }
    if ((err = na_sources_load_file(p->conf->sources, &s, errstr, errstr_size))) {
        return err;
    }
    p->sources_st = st;
    err = apply_sources(p, &s, errstr, errstr_size);
    na_sources_cleanup(&s);
    return err;
}

/* SIGHUP: read the sources file again, changed or not; logged (reloaded /
 * reload_failed, what=sources) and counted (newsalert_reloads_total) by
 * na_producer_reload_sources(). A file that does not load leaves the feeds
 * as they are. */
static void reload_sources_file(struct producer *p) {
    struct na_sources s;
    struct stat st;
    char errstr[512];
    if (!stat(p->conf->sources, &st)) {
        p->sources_st = st; /* the 2 s check need not read it again */
    }
    p->last_sources_check_ms = na_mono_ms();
    if (na_producer_reload_sources(p->conf->sources, &s)) {
        return;
    }
    if (apply_sources(p, &s, errstr, sizeof(errstr))) {
        na_log(NA_LOG_ERROR, "producer", "sources_apply_failed", "err=%s feeds=%zu",
               na_log_q(errstr), p->feeds_cnt);
    }
    na_sources_cleanup(&s);
}

static void check_sources_file(struct producer *p) {
    struct stat st;
    char errstr[512];
    p->last_sources_check_ms = na_mono_ms();
    if (stat(p->conf->sources, &st)) {
        return;
    }
    if (st.st_mtim.tv_sec == p->sources_st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == p->sources_st.st_mtim.tv_nsec &&
        st.st_size == p->sources_st.st_size && st.st_ino == p->sources_st.st_ino) {
        return;
    }
    if (apply_sources_file(p, errstr, sizeof(errstr))) {
        p->sources_st = st; /* do not retry the same broken file every 2 s */
        na_log(NA_LOG_ERROR, "producer", "sources_reload_failed", "err=%s keeping=%zu",
               na_log_q(errstr), p->feeds_cnt);
        return;
    }
    na_log(NA_LOG_INFO, "producer", "sources_reloaded", "sources=%zu", p->feeds_cnt);
}

/* ---------------------------------------------------------------------------
 * topic mode: sources from a compacted topic, shared by a consumer group */

/* Room for the key of a sources or state record: any valid source id
 * (NA_MAX_URL_BYTES, sources.c) and its NUL. */
#define KEY_SIZE (NA_MAX_URL_BYTES + 1)

/* The key of @p rkm as a string in @p buf (KEY_SIZE bytes; "" without a
 * key). false, @p buf "", when the key is longer than any valid source id:
 * no source has it, and a cut copy would name another. */
static bool key_text(const rd_kafka_message_t *rkm, char *buf, size_t size) {
    buf[0] = '\0';
    if (!rkm->key) {
        return true;
    }
    if (rkm->key_len >= size) {
        return false;
    }
    memcpy(buf, rkm->key, rkm->key_len);
    buf[rkm->key_len] = '\0';
    return true;
}

#define BAD_STATE_HELP "Fetch state records read from the state topic that did not load."

/* Read the partitions of @p parts (their numbers) of the state topic up to
 * their ends into the seen-state. Runs inside the rebalance callback, before
 * the sources of those partitions are consumed. */
static void load_state(struct producer *p, const rd_kafka_topic_partition_list_t *parts) {
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(parts->cnt);
    int64_t *hi = calloc((size_t)parts->cnt + 1, sizeof(*hi));
    size_t n = 0;
    int left = 0;
    char id[KEY_SIZE], errstr[512], shown[1100];
    if (!hi) {
        rd_kafka_topic_partition_list_destroy(tp);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = 0;
        int32_t part = parts->elems[i].partition;
        rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(
            p->rk_state, p->conf->state_topic, part, &lo, &hi[i], 10000);
        if (kerr) {
            na_log(NA_LOG_ERROR, "producer", "state_load_failed",
                   "topic=%s partition=%d err=%s", na_log_q(p->conf->state_topic),
                   (int)part, na_log_q(rd_kafka_err2str(kerr)));
            continue;
        }
        if (hi[i] > lo) {
            rd_kafka_topic_partition_list_add(tp, p->conf->state_topic, part)->offset =
                lo;
            left++;
        }
    }
    if (left) {
        rd_kafka_assign(p->rk_state, tp);
    }
    int64_t deadline = na_mono_ms() + STATE_LOAD_TIMEOUT_MS;
    while (left > 0 && na_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(p->rk_state, 200);
        int idx = -1;
        if (!rkm) {
            continue;
        }
        for (int i = 0; i < parts->cnt; i++) {
            if (parts->elems[i].partition == rkm->partition) {
                idx = i;
            }
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (idx >= 0 && hi[idx] >= 0) {
                hi[idx] = -1;
                left--;
            }
        } else if (rkm->err) {
            na_log(NA_LOG_WARN, "producer", "state_read_error", "partition=%d err=%s",
                   (int)rkm->partition, na_log_q(rd_kafka_message_errstr(rkm)));
        } else {
            if (!key_text(rkm, id, sizeof(id))) {
                na_metrics_inc("newsalert_producer_bad_state_records_total",
                               BAD_STATE_HELP, NULL);
                na_log(NA_LOG_WARN, "producer", "state_record_bad",
                       "partition=%d offset=%lld err=\"key of %zu bytes, longer than "
                       "any source id (%u)\"",
                       (int)rkm->partition, (long long)rkm->offset, rkm->key_len,
                       NA_MAX_URL_BYTES);
            } else if (!rkm->payload) {
                na_seen_feed_drop(p->seen, id);
            } else if (na_seen_feed_load(p->seen, id, rkm->payload, rkm->len, errstr,
                                         sizeof(errstr))) {
                na_metrics_inc("newsalert_producer_bad_state_records_total",
                               BAD_STATE_HELP, NULL);
                na_log(NA_LOG_WARN, "producer", "state_record_bad", "feed=%s err=%s",
                       na_log_q(na_conf_shown_id_buf(id, shown, sizeof(shown))),
                       na_log_q(errstr));
            }
            n++;
            if (idx >= 0 && hi[idx] >= 0 && rkm->offset >= hi[idx] - 1) {
                hi[idx] = -1;
                left--;
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_assign(p->rk_state, NULL);
    na_log(left ? NA_LOG_ERROR : NA_LOG_INFO, "producer",
           left ? "state_load_incomplete" : "state_loaded", "partitions=%d records=%zu",
           parts->cnt, n);
    rd_kafka_topic_partition_list_destroy(tp);
    free(hi);
}

static bool in_list(const rd_kafka_topic_partition_list_t *parts, int32_t part) {
    for (int i = 0; i < parts->cnt; i++) {
        if (parts->elems[i].partition == part) {
            return true;
        }
    }
    return false;
}

/* Hand feeds over: stop their fetches, wait for their articles, publish
 * their state, forget them. Returns only when the next owner may start. */
static void revoke_partitions(struct producer *p,
                              const rd_kafka_topic_partition_list_t *parts) {
    size_t moved = 0;
    for (size_t i = 0; i < p->feeds_cnt; i++) {
        struct feed *f = p->feeds[i];
        if (in_list(parts, f->partition) && f->in_flight) {
            na_fetcher_cancel(p->fetcher, f);
            fetch_end(p, f);
        }
        if (in_list(parts, f->partition) && p->ft) {
            na_fulltext_cancel(p->ft, f, "cancelled"); /* produced before the flush */
        }
    }
    if (p->rk) {
        rd_kafka_flush(p->rk, (int)p->conf->flush_timeout_ms); /* articles, then states */
    }
    for (size_t i = p->feeds_cnt; i-- > 0;) {
        struct feed *f = p->feeds[i];
        if (in_list(parts, f->partition)) {
            char *id = na_strdup(f->src.id);
            feed_remove(p, f);
            if (id) {
                na_seen_feed_drop(p->seen, id);
            }
            free(id);
            moved++;
        }
    }
    if (p->rk) {
        rd_kafka_flush(p->rk, (int)p->conf->flush_timeout_ms);
    }
    na_log(NA_LOG_INFO, "producer", "partitions_revoked",
           "instance=%s partitions=%d "
           "feeds=%zu",
           na_log_q(p->instance), parts->cnt, moved);
}

/* Runs inside rd_kafka_consumer_poll() of the sources consumer, on the main
 * thread. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct producer *p = opaque;
    bool coop = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    char list[512];
    size_t o = 0;
    list[0] = '\0';
    for (int i = 0; i < parts->cnt && o < sizeof(list) - 12; i++) {
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? "," : "",
                              (int)parts->elems[i].partition);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        load_state(p, parts);
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING; /* whole compacted log */
        }
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e) {
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, parts);
        }
        na_log(NA_LOG_INFO, "producer", "partitions_assigned",
               "instance=%s partitions=\"%s\"", na_log_q(p->instance), list);
        return;
    }
    revoke_partitions(p, parts);
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e) {
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static void on_source_record(struct producer *p, rd_kafka_message_t *rkm) {
    char id[KEY_SIZE], errstr[512], shown[1100];
    struct na_source src;
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            na_log(NA_LOG_WARN, "producer", "sources_consume_error", "err=%s",
                   na_log_q(rd_kafka_message_errstr(rkm)));
        }
        return;
    }
    if (!key_text(rkm, id, sizeof(id))) {
        na_metrics_inc("newsalert_producer_bad_sources_total",
                       "Source records that were not a valid source.", NULL);
        na_log(NA_LOG_WARN, "producer", "bad_source",
               "partition=%d offset=%lld err=\"key of %zu bytes, longer than any source "
               "id (%u)\"",
               (int)rkm->partition, (long long)rkm->offset, rkm->key_len,
               NA_MAX_URL_BYTES);
        return;
    }
    if (!id[0]) {
        na_log(NA_LOG_WARN, "producer", "bad_source",
               "partition=%d offset=%lld "
               "err=\"record without key\"",
               (int)rkm->partition, (long long)rkm->offset);
        return;
    }
    struct feed *f = feed_find(p, id);
    if (!rkm->payload) { /* tombstone: the source was removed */
        if (f) {
            na_log(NA_LOG_INFO, "producer", "feed_removed", "feed=%s",
                   na_log_q(f->label));
            feed_remove(p, f);
            na_seen_feed_drop(p->seen, id);
            if (p->rk) { /* its state goes too */
                rd_kafka_producev(
                    p->rk, RD_KAFKA_V_TOPIC(p->conf->state_topic),
                    RD_KAFKA_V_PARTITION(rkm->partition), RD_KAFKA_V_KEY(id, strlen(id)),
                    RD_KAFKA_V_VALUE(NULL, 0), RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
            }
        }
        return;
    }
    if (na_source_parse_json(rkm->payload, rkm->len, id, &src, errstr, sizeof(errstr))) {
        na_metrics_inc("newsalert_producer_bad_sources_total",
                       "Source records that were not a valid source.", NULL);
        na_log(NA_LOG_WARN, "producer", "bad_source", "partition=%d offset=%lld err=%s",
               (int)rkm->partition, (long long)rkm->offset, na_log_q(errstr));
        return;
    }
    if (feed_upsert(p, &src, rkm->partition)) {
        na_log(NA_LOG_ERROR, "producer", "source_dropped", "feed=%s err=no memory",
               na_log_q(na_conf_shown_id_buf(id, shown, sizeof(shown))));
    }
}

static rd_kafka_conf_t *kafka_conf(const struct na_producer_conf *conf, char *errstr,
                                   size_t errstr_size) {
    rd_kafka_conf_t *kconf = na_kafka_conf_new(conf->brokers, NULL, errstr, errstr_size);
    return kconf;
}

static na_err_t apply_user_props(const struct na_producer_conf *conf,
                                 rd_kafka_conf_t *kconf, char *errstr,
                                 size_t errstr_size) {
    for (size_t i = 0; i < conf->props.cnt; i++) {
        char key[256];
        const char *eq = strchr(conf->props.kv[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - conf->props.kv[i]),
                 conf->props.kv[i]);
        na_err_t err = na_kafka_conf_set(kconf, key, eq + 1, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    return NA_OK;
}

/* Partitions of @p topic, or -1. A topic just created may take a moment to
 * show in the metadata: retried for up to 10 s. */
static int topic_partitions(rd_kafka_t *rk, const char *topic) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = na_mono_ms() + 10000;
    int n = -1;
    if (!rkt) {
        return -1;
    }
    while (n < 1 && na_mono_ms() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (!rd_kafka_metadata(rk, 0, rkt, &md, 5000)) {
            if (md->topic_cnt == 1 && !md->topics[0].err) {
                n = md->topics[0].partition_cnt;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (n < 1) {
            na_sleep_ms(200);
        }
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

static const char *const sources_configs[] = {"cleanup.policy", "compact", NULL};
static const char *const state_configs[] = {"cleanup.policy", "compact",
                                            "max.message.bytes", "4194304", NULL};

/* Create the sources and state topics when missing; the state topic needs
 * at least as many partitions as the sources topic (records go to the same
 * partition number). */
static na_err_t ensure_mode_topics(rd_kafka_t *rk, const struct na_producer_conf *conf,
                                   bool create, char *errstr, size_t errstr_size) {
    char terr[512];
    if (create) {
        struct na_topic_spec specs[] = {
            {conf->sources_topic, NA_SOURCES_PARTITIONS, sources_configs},
        };
        if (na_kafka_ensure_topics(rk, specs, 1, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "producer", "topic_check_failed", "err=%s",
                   na_log_q(terr));
        }
    }
    int ns = topic_partitions(rk, conf->sources_topic);
    if (ns < 1) {
        snprintf(errstr, errstr_size, "topic %s: not found", conf->sources_topic);
        return NA_ERR_NOT_FOUND;
    }
    if (create) {
        struct na_topic_spec specs[] = {{conf->state_topic, ns, state_configs}};
        if (na_kafka_ensure_topics(rk, specs, 1, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "producer", "topic_check_failed", "err=%s",
                   na_log_q(terr));
        }
    }
    int nst = topic_partitions(rk, conf->state_topic);
    if (nst < ns) {
        snprintf(errstr, errstr_size,
                 "topic %s has %d partitions; it needs at least %d, "
                 "as many as %s",
                 conf->state_topic, nst, ns, conf->sources_topic);
        return NA_ERR_CONFIG;
    }
    return NA_OK;
}

static na_err_t start_topic_mode(struct producer *p, char *errstr, size_t errstr_size) {
    const struct na_producer_conf *conf = p->conf;
    rd_kafka_conf_t *kconf = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    na_err_t err = NA_OK;

    if ((err =
             ensure_mode_topics(p->rk, conf, conf->create_topics, errstr, errstr_size))) {
        return err;
    }
    /* The state reader: plain assign() (its group.id is never joined, nothing
     * is committed), stops at each partition end. */
    if (!(kconf = kafka_conf(conf, errstr, errstr_size))) {
        return NA_ERR_CONFIG;
    }
    if ((err = na_kafka_conf_set(kconf, "enable.partition.eof", "true", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "group.id", "newsalert-producer-reader", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "client.id", "newsalert-producer-state", errstr,
                                 errstr_size)) ||
        (err = apply_user_props(conf, kconf, errstr, errstr_size))) {
        goto out;
    }
    rd_kafka_conf_set_error_cb(kconf, on_error);
    rd_kafka_conf_set_opaque(kconf, p);
    if (!(p->rk_state = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size))) {
        err = NA_ERR_KAFKA;
        goto out;
    }
    /* The sources consumer: one group; Kafka's rebalancing hands out feeds.
     * Nothing is committed: an owner reads its partitions from the start. */
    if (!(kconf = kafka_conf(conf, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    if ((err =
             na_kafka_conf_set(kconf, "group.id", conf->group_id, errstr, errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "auto.offset.reset", "earliest", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "client.id", "newsalert-producer-sources", errstr,
                                 errstr_size)) ||
        (err = apply_user_props(conf, kconf, errstr, errstr_size))) {
        goto out;
    }
    rd_kafka_conf_set_rebalance_cb(kconf, on_rebalance);
    rd_kafka_conf_set_error_cb(kconf, on_error);
    rd_kafka_conf_set_opaque(kconf, p);
    if (!(p->rk_src = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size))) {
        err = NA_ERR_KAFKA;
        goto out;
    }
    kconf = NULL;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, conf->sources_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(p->rk_src, sub);
    if (kerr) {
        snprintf(errstr, errstr_size, "subscribe %s: %s", conf->sources_topic,
                 rd_kafka_err2str(kerr));
        err = NA_ERR_KAFKA;
    }
out:
    if (kconf) {
        rd_kafka_conf_destroy(kconf);
    }
    if (sub) {
        rd_kafka_topic_partition_list_destroy(sub);
    }
    return err;
}

/* ---------------------------------------------------------------------------
 * the run */

/* Feeds whose state changed are written STATE_SAVE_MS after their change,
 * schedules STATE_SOFT_SAVE_MS after theirs. Writing takes at most
 * STATE_SAVE_BUDGET_MS of a turn of the loop and STATE_SAVE_SHARE_MS of any
 * second: in a burst of changes (the first round over thousands of new
 * feeds, each a file and an fsync) fetching goes on at full speed while the
 * writes catch up; what is not written yet may be re-published after a
 * crash, never lost. @p force: everything now (shutdown). A feed whose
 * write failed is tried again later. */
static void save_state(struct producer *p, bool force) {
    char errstr[512];
    na_err_t err;
    int64_t now = na_mono_ms();
    if (!na_seen_dirty(p->seen)) {
        return;
    }
    if (now - p->save_window_ms >= 1000) {
        p->save_window_ms = now;
        p->save_spent_ms = 0;
    }
    int64_t budget = STATE_SAVE_SHARE_MS - p->save_spent_ms;
    if (!force && budget <= 0) {
        return;
    }
    err = force ? na_seen_save(p->seen, errstr, sizeof(errstr))
                : na_seen_save_due(p->seen, STATE_SAVE_MS, STATE_SOFT_SAVE_MS,
                                   budget < STATE_SAVE_BUDGET_MS ? budget
                                                                 : STATE_SAVE_BUDGET_MS,
                                   errstr, sizeof(errstr));
    p->save_spent_ms += na_mono_ms() - now;
    if (err) {
        na_log(NA_LOG_ERROR, "producer", "state_save_failed", "err=%s", na_log_q(errstr));
        na_metrics_inc("newsalert_producer_state_save_errors_total",
                       "Seen-state writes that failed (tried again).", NULL);
    }
}

static void write_metrics(struct producer *p) {
    char errstr[512];
    p->last_metrics_ms = na_mono_ms();
    na_metric_set(na_metrics_get(NA_METRIC_GAUGE, "newsalert_producer_state_feeds",
                                 "Feeds whose seen-state this instance holds.", NULL),
                  (double)na_seen_feeds(p->seen));
    if (!p->conf->metrics_file) {
        return;
    }
    char *text = na_metrics_render();
    if (text && na_write_file_atomic(p->conf->metrics_file, text, strlen(text), errstr,
                                     sizeof(errstr))) {
        na_log(NA_LOG_WARN, "producer", "metrics_write_failed", "err=%s",
               na_log_q(errstr));
    }
    free(text);
}

static na_err_t start_producer(struct producer *p, char *errstr, size_t errstr_size) {
    const struct na_producer_conf *conf = p->conf;
    rd_kafka_conf_t *kconf = kafka_conf(conf, errstr, errstr_size);
    na_err_t err;
    if (!kconf) {
        return NA_ERR_CONFIG;
    }
    /* Our delivery guarantees first, then the user's -X (which may tune them). */
    if ((err = na_kafka_conf_set(kconf, "client.id", "newsalert-producer", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "acks", "all", errstr, errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "linger.ms", "5", errstr, errstr_size)) ||
        (err =
             na_kafka_conf_set(kconf, "compression.type", "lz4", errstr, errstr_size)) ||
        (err = apply_user_props(conf, kconf, errstr, errstr_size))) {
        rd_kafka_conf_destroy(kconf);
        return err;
    }
    rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
    rd_kafka_conf_set_error_cb(kconf, on_error);
    rd_kafka_conf_set_opaque(kconf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
    if (!p->rk) {
        rd_kafka_conf_destroy(kconf);
        return NA_ERR_KAFKA;
    }
    if ((err = na_kafka_start_check(p->rk, errstr, errstr_size))) {
        return err;
    }
    if (conf->create_topics) {
        struct na_topic_spec spec = na_kafka_topic_articles(conf->topic);
        char terr[512];
        if (na_kafka_ensure_topics(p->rk, &spec, 1, 10000, terr, sizeof(terr))) {
            na_log(NA_LOG_WARN, "producer", "topic_check_failed", "err=%s",
                   na_log_q(terr));
        }
    }
    return NA_OK;
}

static void default_instance(const struct na_producer_conf *conf, char *buf,
                             size_t size) {
    char host[128] = "host";
    if (conf->instance_id && *conf->instance_id) {
        snprintf(buf, size, "%s", conf->instance_id);
        return;
    }
    if (gethostname(host, sizeof(host) - 1)) {
        snprintf(host, sizeof(host), "host");
    }
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, size, "%s-%ld", host, (long)getpid());
}

/* The status snapshot for the operations listener (httpd.h), main thread. */
static json_t *status_doc(struct producer *p) {
    json_t *feeds = json_array();
    json_t *not_ready = json_array();
    char ubuf[1024];
    if (!p->rk && !p->conf->dry_run) {
        json_array_append_new(not_ready, json_string("kafka: no producer"));
    }
    for (size_t i = 0; i < p->feeds_cnt; i++) {
        struct feed *f = p->feeds[i];
        double ok = na_metric_value(feed_last_success(f));
        json_int_t stale_s = ok > 0 ? (json_int_t)(na_now_ms() / 1000 - (int64_t)ok) : -1;
        /* A feed never fetched successfully counts from the daemon's start. */
        json_int_t age_s =
            ok > 0 ? stale_s : (json_int_t)((na_mono_ms() - p->started_ms) / 1000);
        bool stale = age_s * 1000 > f->src.stale_after_ms;
        if (stale && f->src.critical) {
            char reason[512];
            snprintf(reason, sizeof(reason), "feed %s (critical) stale %lld s", f->label,
                     (long long)age_s);
            json_array_append_new(not_ready, json_string(reason));
        }
        json_array_append_new(
            feeds,
            json_pack("{ss ss ss ss sb sI sb}", "id", f->label, "name",
                      /* a name defaults to the id */
                      strcmp(f->src.name, f->src.id) ? f->src.name : f->label, "url",
                      shown_url(f->src.url, ubuf, sizeof(ubuf)), "status",
                      f->retired         ? "retired"
                      : f->errors_in_row ? "error"
                      : f->fetched       ? "ok"
                                         : "pending",
                      "critical", f->src.critical, "stale_s", stale_s, "stale", stale));
    }
    return json_pack("{ss ss sb so s{sb ss} so}", "daemon", "newsalert-producer",
                     "version", NA_VERSION, "ready", json_array_size(not_ready) == 0,
                     "not_ready", not_ready, "kafka", "connected", p->rk != NULL,
                     "brokers", p->conf->brokers, "feeds", feeds);
}

na_err_t na_producer_run(const struct na_producer_conf *conf,
                         volatile sig_atomic_t *running, struct na_producer_stats *stats,
                         char *errstr, size_t errstr_size) {
    struct producer p;
    na_err_t err = NA_OK;
    bool topic_mode = conf->sources_topic && *conf->sources_topic;
    na_httpd_t *httpd = NULL;
    int64_t published_ms = 0;

    memset(&p, 0, sizeof(p));
    memset(stats, 0, sizeof(*stats));
    p.conf = conf;
    p.stats = stats;
    p.running = running;
    srandom((unsigned)na_now_ms() ^ (unsigned)getpid());
    default_instance(conf, p.instance, sizeof(p.instance));

    if (topic_mode && (conf->once || conf->dry_run)) {
        snprintf(errstr, errstr_size,
                 "once and dry_run need a sources file, not "
                 "sources_topic");
        err = NA_ERR_CONFIG;
        goto out;
    }
    if (topic_mode) {
        err = na_seen_load(NULL, &p.seen, errstr, errstr_size);
    } else {
        if (mkdir(conf->state_dir, 0700) && errno != EEXIST) {
            snprintf(errstr, errstr_size, "state_dir %s: %s", conf->state_dir,
                     strerror(errno));
            err = NA_ERR_IO;
            goto out;
        }
        err = na_seen_load(conf->state_dir, &p.seen, errstr, errstr_size);
    }
    if (err) {
        goto out;
    }
    struct na_fetch_opts fopts = {
        .connect_timeout_ms = conf->fetch_connect_timeout_ms,
        .timeout_ms = conf->fetch_timeout_ms,
        .max_redirects = conf->fetch_max_redirects,
        .max_bytes = (size_t)conf->fetch_max_bytes,
        .user_agent = conf->user_agent,
        .instance_id = p.instance,
    };
    if (!(p.fetcher = na_fetcher_new(&fopts))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    struct na_fulltext_opts ftopts = {
        .wait_ms = conf->full_text_wait_ms,
        .retry_base_ms = conf->retry_base_ms,
        .retry_max_ms = conf->retry_max_ms,
        .timeout_ms = (long)conf->fetch_timeout_ms,
        .max_bytes = (size_t)conf->fetch_max_bytes < NA_MAX_PAGE_BYTES
                         ? (size_t)conf->fetch_max_bytes
                         : NA_MAX_PAGE_BYTES,
        .user_agent = conf->user_agent,
    };
    struct na_fulltext_slots slots = {page_slot_acquire, page_slot_release, &p};
    if (!(p.ft = na_fulltext_new(&ftopts, p.fetcher, &slots, page_done, &p))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!topic_mode && (err = apply_sources_file(&p, errstr, errstr_size))) {
        goto out;
    }
    if (!conf->dry_run && (err = start_producer(&p, errstr, errstr_size))) {
        goto out;
    }
    if (topic_mode && (err = start_topic_mode(&p, errstr, errstr_size))) {
        goto out;
    }
    if (conf->daemon.http_listen && *conf->daemon.http_listen) {
        struct na_httpd_opts hopts = {conf->daemon.http_listen, "newsalert-producer", 0};
        if ((err = na_httpd_start(&hopts, &httpd, errstr, errstr_size))) {
            goto out;
        }
    }
    na_log(NA_LOG_INFO, "producer", "started",
           "instance=%s mode=%s sources=%zu topic=%s once=%d dry_run=%d",
           na_log_q(p.instance), topic_mode ? "topic" : "file", p.feeds_cnt,
           na_log_q(conf->topic), conf->once, conf->dry_run);
    p.last_sources_check_ms = p.last_metrics_ms = na_mono_ms();
    p.started_ms = na_mono_ms();

    while (*running && !p.fatal) {
        if (na_daemon_take_reload()) {
            if (!topic_mode) {
                reload_sources_file(&p);
            }
            rd_kafka_t *rks[] = {p.rk, p.rk_state, p.rk_src};
            na_kafka_reload_sasl(&conf->props, rks, sizeof(rks) / sizeof(rks[0]));
        }
        if (httpd && na_mono_ms() - published_ms >= 1000) {
            na_httpd_publish_steal(httpd, status_doc(&p));
            if (p.rk) {
                na_daemon_kafka_gauges(p.rk, "articles");
            }
            published_ms = na_mono_ms();
        }
        if (p.rk_src) {
            for (int i = 0; i < 1000; i++) {
                rd_kafka_message_t *rkm = rd_kafka_consumer_poll(p.rk_src, 0);
                if (!rkm) {
                    break;
                }
                on_source_record(&p, rkm);
                rd_kafka_message_destroy(rkm);
            }
        } else if (!conf->once &&
                   na_mono_ms() - p.last_sources_check_ms > SOURCES_CHECK_MS) {
            check_sources_file(&p);
        }
        if (!p.rk_src && na_mono_ms() - p.last_stamp_ms > STATE_STAMP_MS) {
            prune_state(&p, NULL);
        }
        int64_t page_wait = na_fulltext_run(p.ft); /* pages hold items back: first */
        start_due_fetches(&p);
        int64_t wait = 100;
        if (page_wait >= 0 && page_wait < wait) {
            wait = page_wait;
        }
        if (p.heap_cnt &&
            na_fetcher_active(p.fetcher) < (size_t)conf->fetch_concurrency) {
            int64_t until = p.heap[0]->due_ms - na_mono_ms();
            wait = until < 0 ? 0 : until < wait ? until : wait;
        }
        bool busy = na_fetcher_active(p.fetcher) > 0;
        na_fetcher_run(p.fetcher, busy ? (int)wait : 0, on_fetched, &p);
        if (p.rk) {
            rd_kafka_poll(p.rk, busy ? 0 : (int)wait);
        } else if (!busy && wait > 0) {
            na_sleep_ms(wait);
        }
        reap_dead(&p);
        save_state(&p, false);
        if (na_mono_ms() - p.last_metrics_ms > METRICS_WRITE_MS) {
            write_metrics(&p);
        }
        if (conf->once && round_done(&p)) {
            break;
        }
    }

    /* Items still waiting for their pages go out now with the feed's text
     * (never lost), before the flush. */
    if (p.ft) {
        size_t n = na_fulltext_cancel(p.ft, NULL, "shutdown");
        if (n) {
            na_log(NA_LOG_INFO, "producer", "full_text_shutdown",
                   "items=%zu reason=\"produced with the feed's text at shutdown\"", n);
        }
    }
    /* Shutdown: leave the group (hands our feeds over, with their state),
     * flush -> check the out queue -> save -> destroy. */
    if (p.rk_src) {
        rd_kafka_consumer_close(p.rk_src);
    }
    if (p.rk) {
        rd_kafka_resp_err_t ferr = rd_kafka_flush(p.rk, (int)conf->flush_timeout_ms);
        if (ferr || rd_kafka_outq_len(p.rk) > 0) {
            snprintf(errstr, errstr_size, "%d messages not delivered within %lld ms",
                     rd_kafka_outq_len(p.rk), conf->flush_timeout_ms);
            err = NA_ERR_TIMEOUT;
        }
    }
    save_state(&p, true);
    write_metrics(&p);
    if (!err && p.fatal) {
        snprintf(errstr, errstr_size, "fatal Kafka error (see log)");
        err = NA_ERR_KAFKA;
    }
    if (!err && stats->delivery_errors) {
        snprintf(errstr, errstr_size,
                 "%llu articles were not delivered (they will be "
                 "produced again on the next run)",
                 stats->delivery_errors);
        err = NA_ERR_KAFKA;
    }
    na_log(
        NA_LOG_INFO, "producer", "summary",
        "fetches=%llu fetch_errors=%llu not_modified=%llu parse_errors=%llu items=%llu "
        "skipped_seen=%llu skipped_dup=%llu updates=%llu produced=%llu delivered=%llu "
        "delivery_errors=%llu moved=%llu retired=%llu full_text_ok=%llu "
        "full_text_failed=%llu full_text_disallowed=%llu",
        stats->fetches, stats->fetch_errors, stats->not_modified, stats->parse_errors,
        stats->items, stats->skipped_seen, stats->skipped_dup, stats->updates,
        stats->produced, stats->delivered, stats->delivery_errors, stats->moved,
        stats->retired, stats->full_text_ok, stats->full_text_failed,
        stats->full_text_disallowed);
out:
    na_httpd_stop(httpd);
    if (p.rk_src) {
        rd_kafka_destroy(p.rk_src);
    }
    if (p.rk_state) {
        rd_kafka_destroy(p.rk_state);
    }
    if (p.rk) {
        if (rd_kafka_outq_len(p.rk) > 0) {
            /* Messages still queued after the deadline: their contexts are
             * freed by the purge's delivery reports. */
            rd_kafka_purge(p.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p.rk, 0);
        }
        rd_kafka_destroy(p.rk);
    }
    na_fulltext_destroy(p.ft); /* before the fetcher and the hosts it uses */
    na_fetcher_destroy(p.fetcher);
    for (size_t i = 0; i < p.feeds_cnt; i++) {
        feed_free(p.feeds[i]);
    }
    for (size_t i = 0; i < p.dead_cnt; i++) {
        feed_free(p.dead[i]);
    }
    for (size_t i = 0; i < p.hosts_cnt; i++) {
        free(p.hosts[i]->origin);
        free(p.hosts[i]);
    }
    free(p.feeds);
    free(p.heap);
    free(p.dead);
    free(p.hosts);
    na_seen_destroy(p.seen);
    return err;
}

/* ---------------------------------------------------------------------------
 * sources load */

struct load_ctx {
    size_t failed;
    char first_err[256];
};

static void on_load_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                             void *opaque) {
    struct load_ctx *lc = opaque;
    if (rkm->err) {
        if (!lc->failed++) {
            snprintf(lc->first_err, sizeof(lc->first_err), "%s",
                     rd_kafka_err2str(rkm->err));
        }
    }
}

/* Ids of the live records of @p topic now (the latest per key is not a
 * tombstone), as a JSON object used as a set. */
static json_t *topic_keys(const struct na_producer_conf *conf, int partitions,
                          char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *kconf = kafka_conf(conf, errstr, errstr_size);
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *tp = NULL;
    json_t *keys = json_object();
    int eofs = 0;
    char id[KEY_SIZE];

    /* A group.id is needed for the consumer API, but with assign() and no
     * commits the group is never joined. */
    if (!kconf || !keys ||
        na_kafka_conf_set(kconf, "enable.partition.eof", "true", errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "group.id", "newsalert-producer-reader", errstr,
                          errstr_size) ||
        na_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr, errstr_size) ||
        apply_user_props(conf, kconf, errstr, errstr_size)) {
        goto fail;
    }
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size))) {
        goto fail;
    }
    kconf = NULL;
    tp = rd_kafka_topic_partition_list_new(partitions);
    for (int i = 0; i < partitions; i++) {
        rd_kafka_topic_partition_list_add(tp, conf->sources_topic, i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(rk, tp);
    int64_t deadline = na_mono_ms() + 60000;
    while (eofs < partitions) {
        if (na_mono_ms() > deadline) {
            snprintf(errstr, errstr_size, "reading %s: no end within 60 s",
                     conf->sources_topic);
            goto fail;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 500);
        if (!rkm) {
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (rkm->err) {
            na_log(NA_LOG_DEBUG, "producer", "sources_read_error", "err=%s",
                   na_log_q(rd_kafka_message_errstr(rkm)));
        } else {
            if (!key_text(rkm, id, sizeof(id))) {
                /* Not a source a file can name: left alone, as the
                 * producers leave it (bad_source). */
                na_log(NA_LOG_WARN, "producer", "sources_record_bad",
                       "partition=%d offset=%lld err=\"key of %zu bytes, longer than "
                       "any source id (%u)\"",
                       (int)rkm->partition, (long long)rkm->offset, rkm->key_len,
                       NA_MAX_URL_BYTES);
            } else if (rkm->payload) {
                json_object_set_new(keys, id, json_true());
            } else {
                json_object_del(keys, id);
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_topic_partition_list_destroy(tp);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return keys;
fail:
    if (tp) {
        rd_kafka_topic_partition_list_destroy(tp);
    }
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (kconf) {
        rd_kafka_conf_destroy(kconf);
    }
    json_decref(keys);
    return NULL;
}

na_err_t na_producer_sources_load(const struct na_producer_conf *conf, const char *path,
                                  char *errstr, size_t errstr_size) {
    struct na_sources s;
    struct load_ctx lc;
    rd_kafka_conf_t *kconf = NULL;
    rd_kafka_t *rk = NULL;
    json_t *keys = NULL;
    const char *key;
    json_t *v;
    size_t removed = 0;
    na_err_t err;

    memset(&lc, 0, sizeof(lc));
    if (!conf->sources_topic || !*conf->sources_topic) {
        snprintf(errstr, errstr_size, "sources load needs --sources-topic");
        return NA_ERR_USAGE;
    }
    if ((err = na_sources_load_file(path, &s, errstr, errstr_size))) {
        return err;
    }
    if (!(kconf = kafka_conf(conf, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    /* murmur2 as the Java clients: a record keeps its partition whichever
     * client writes it. */
    if ((err = na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr,
                                 errstr_size)) ||
        (err = na_kafka_conf_set(kconf, "partitioner", "murmur2_random", errstr,
                                 errstr_size)) ||
        (err = apply_user_props(conf, kconf, errstr, errstr_size))) {
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(kconf, on_load_delivery);
    rd_kafka_conf_set_opaque(kconf, &lc);
    if (!(rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size))) {
        err = NA_ERR_KAFKA;
        goto out;
    }
    kconf = NULL;
    if ((err = na_kafka_start_check(rk, errstr, errstr_size)) ||
        (err = ensure_mode_topics(rk, conf, true, errstr, errstr_size))) {
        goto out;
    }
    if (!(keys = topic_keys(conf, topic_partitions(rk, conf->sources_topic), errstr,
                            errstr_size))) {
        err = NA_ERR_KAFKA;
        goto out;
    }
    for (size_t i = 0; i < s.cnt; i++) {
        rd_kafka_resp_err_t kerr =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(conf->sources_topic),
                              RD_KAFKA_V_KEY(s.v[i].id, strlen(s.v[i].id)),
                              RD_KAFKA_V_VALUE(s.v[i].json, strlen(s.v[i].json)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 100);
            i--;
            continue;
        }
        if (kerr) {
            snprintf(errstr, errstr_size, "producing source %s: %s", s.v[i].id,
                     rd_kafka_err2str(kerr));
            err = NA_ERR_KAFKA;
            goto out;
        }
        json_object_del(keys, s.v[i].id);
    }
    json_object_foreach(keys, key, v) {
        rd_kafka_resp_err_t kerr = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(conf->sources_topic), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(NULL, 0), RD_KAFKA_V_END);
        if (kerr) {
            snprintf(errstr, errstr_size, "removing source %s: %s", key,
                     rd_kafka_err2str(kerr));
            err = NA_ERR_KAFKA;
            goto out;
        }
        removed++;
    }
    if (rd_kafka_flush(rk, 30000) || rd_kafka_outq_len(rk) > 0 || lc.failed) {
        snprintf(errstr, errstr_size, "%zu source records not confirmed: %s",
                 lc.failed + (size_t)rd_kafka_outq_len(rk),
                 lc.failed ? lc.first_err : "timed out");
        err = NA_ERR_KAFKA;
        goto out;
    }
    na_log(NA_LOG_INFO, "producer", "sources_loaded",
           "topic=%s published=%zu removed=%zu", na_log_q(conf->sources_topic), s.cnt,
           removed);
out:
    if (rk) {
        rd_kafka_destroy(rk);
    }
    if (kconf) {
        rd_kafka_conf_destroy(kconf);
    }
    json_decref(keys);
    na_sources_cleanup(&s);
    return err;
}
