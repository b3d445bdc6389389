/* Replay of the articles topic: bounds, ranges, the read loop and its
 * outputs (see replay.h and docs/replay.md). */
#include "replay.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "deliver.h"
#include "format.h"
#include "ledger.h"
#include "story.h"
#include "newsalert/fault.h"
#include "newsalert/http.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "newsalert/workq.h"
#include "merge.h"
#include "pipeline.h"
#include "tracker.h"

/* ---- bounds ---- */

static int pos_cmp(const void *a, const void *b) {
    const struct na_replay_pos *x = a;
    const struct na_replay_pos *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

void na_replay_bound_cleanup(struct na_replay_bound *b) {
    if (!b) {
        return;
    }
    free(b->pos);
    memset(b, 0, sizeof(*b));
}

static na_err_t parse_offsets(const char *s, struct na_replay_bound *b, char *errstr,
                              size_t errstr_size) {
    const char *p = s;
    b->kind = NA_REPLAY_OFFSETS;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        char *colon;
        long long part, off;
        if (n == 0 || n >= sizeof(item)) {
            snprintf(errstr, errstr_size, "bad partition offset \"%.*s\" in \"%s\"",
                     (int)(n < 40 ? n : 40), p, s);
            return NA_ERR_INVALID;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        colon = strchr(item, ':');
        if (!colon) {
            snprintf(errstr, errstr_size,
                     "\"%s\": want beginning, end, an RFC 3339 time or "
                     "PARTITION:OFFSET[,..]",
                     s);
            return NA_ERR_INVALID;
        }
        *colon = '\0';
        if (na_parse_int64(item, 0, NA_REPLAY_MAX_PARTITIONS - 1, &part) ||
            na_parse_int64(colon + 1, 0, INT64_MAX, &off)) {
            snprintf(errstr, errstr_size, "bad partition offset \"%s:%s\" in \"%s\"",
                     item, colon + 1, s);
            return NA_ERR_INVALID;
        }
        if (b->pos_cnt >= NA_REPLAY_MAX_PARTITIONS) {
            snprintf(errstr, errstr_size, "more than %d partitions in \"%.40s...\"",
                     NA_REPLAY_MAX_PARTITIONS, s);
            return NA_ERR_INVALID;
        }
        struct na_replay_pos *v = realloc(b->pos, (b->pos_cnt + 1) * sizeof(*v));
        if (!v) {
            return NA_ERR_NOMEM;
        }
        b->pos = v;
        b->pos[b->pos_cnt].partition = (int32_t)part;
        b->pos[b->pos_cnt].offset = off;
        b->pos_cnt++;
        p += n;
        if (*p == ',') {
            p++;
            if (!*p) {
                snprintf(errstr, errstr_size, "trailing comma in \"%s\"", s);
                return NA_ERR_INVALID;
            }
        }
    }
    if (!b->pos_cnt) {
        snprintf(errstr, errstr_size, "empty bound");
        return NA_ERR_INVALID;
    }
    qsort(b->pos, b->pos_cnt, sizeof(*b->pos), pos_cmp);
    for (size_t i = 1; i < b->pos_cnt; i++) {
        if (b->pos[i].partition == b->pos[i - 1].partition) {
            snprintf(errstr, errstr_size, "partition %d named twice in \"%s\"",
                     (int)b->pos[i].partition, s);
            return NA_ERR_INVALID;
        }
    }
    return NA_OK;
}

na_err_t na_replay_bound_parse(const char *s, struct na_replay_bound *b, char *errstr,
                               size_t errstr_size) {
    int64_t t;
    memset(b, 0, sizeof(*b));
    if (!s || !*s) {
        snprintf(errstr, errstr_size, "empty bound");
        return NA_ERR_INVALID;
    }
    if (!strcmp(s, "beginning")) {
        b->kind = NA_REPLAY_BEGINNING;
        return NA_OK;
    }
    if (!strcmp(s, "end")) {
        b->kind = NA_REPLAY_END;
        return NA_OK;
    }
    /* A time has '-' at index 4 ("2026-..."); offsets never hold '-'. */
    if (strlen(s) >= 10 && s[4] == '-') {
        /* To the millisecond: record timestamps are. */
        if (na_time_parse_rfc3339_ms(s, &t) || t < 0) {
            snprintf(errstr, errstr_size, "\"%s\" is not an RFC 3339 time", s);
            return NA_ERR_INVALID;
        }
        b->kind = NA_REPLAY_TIME;
        b->time_ms = t;
        return NA_OK;
    }
    return parse_offsets(s, b, errstr, errstr_size);
}

/* ---- planning ---- */

static const struct na_replay_pos *bound_find(const struct na_replay_bound *b,
                                              int32_t partition) {
    struct na_replay_pos key = {partition, 0};
    return bsearch(&key, b->pos, b->pos_cnt, sizeof(*b->pos), pos_cmp);
}

static int wm_cmp(const void *a, const void *b) {
    const struct na_replay_wm *x = a;
    const struct na_replay_wm *y = b;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

static int64_t bound_offset(const struct na_replay_bound *b, const struct na_replay_wm *w,
                            int64_t time_offset) {
    switch (b->kind) {
    case NA_REPLAY_BEGINNING:
        return w->low;
    case NA_REPLAY_END:
        return w->high;
    case NA_REPLAY_TIME:
        return time_offset < 0 ? w->high : time_offset;
    case NA_REPLAY_OFFSETS:
        break;
    }
    return bound_find(b, w->partition)->offset;
}

na_err_t na_replay_plan(const struct na_replay_bound *from,
                        const struct na_replay_bound *to, const struct na_replay_wm *wm,
                        size_t wm_cnt, struct na_replay_range *range, char *errstr,
                        size_t errstr_size) {
    struct na_replay_wm *sorted = NULL;
    na_err_t err = NA_OK;
    const struct na_replay_bound *bounds[2] = {from, to};

    memset(range, 0, sizeof(*range));
    range->ts_from_ms = from->kind == NA_REPLAY_TIME ? from->time_ms : NA_REPLAY_TS_NONE;
    range->ts_to_ms = to->kind == NA_REPLAY_TIME ? to->time_ms : NA_REPLAY_TS_NONE;
    /* Every partition an offset bound names must exist. */
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < bounds[k]->pos_cnt; i++) {
            bool found = false;
            for (size_t j = 0; j < wm_cnt && !found; j++) {
                found = wm[j].partition == bounds[k]->pos[i].partition;
            }
            if (!found) {
                snprintf(errstr, errstr_size,
                         "--%s names partition %d, which the topic "
                         "does not have (%zu partitions)",
                         k ? "to" : "from", (int)bounds[k]->pos[i].partition, wm_cnt);
                return NA_ERR_INVALID;
            }
        }
    }
    if (!wm_cnt) {
        return NA_OK;
    }
    sorted = malloc(wm_cnt * sizeof(*sorted));
    range->parts = calloc(wm_cnt, sizeof(*range->parts));
    if (!sorted || !range->parts) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    memcpy(sorted, wm, wm_cnt * sizeof(*sorted));
    qsort(sorted, wm_cnt, sizeof(*sorted), wm_cmp);
    for (size_t i = 0; i < wm_cnt; i++) {
        const struct na_replay_wm *w = &sorted[i];
        struct na_replay_part *p = &range->parts[range->cnt];
        if ((from->kind == NA_REPLAY_OFFSETS && !bound_find(from, w->partition)) ||
            (to->kind == NA_REPLAY_OFFSETS && !bound_find(to, w->partition))) {
            continue; /* an offset bound selects its partitions */
        }
        int64_t high = w->high < w->low ? w->low : w->high;
        p->partition = w->partition;
        p->low = w->low;
        p->high = high;
        p->start = clamp64(bound_offset(from, w, w->from_time_offset), w->low, high);
        p->end = clamp64(bound_offset(to, w, w->to_time_offset), w->low, high);
        if (p->end < p->start) {
            p->end = p->start;
        }
        p->next = p->start;
        p->resume = p->start;
        p->done = p->start >= p->end;
        range->cnt++;
    }
out:
    free(sorted);
    if (err) {
        na_replay_range_cleanup(range);
    }
    return err;
}

void na_replay_range_cleanup(struct na_replay_range *range) {
    if (!range) {
        return;
    }
    free(range->parts);
    range->parts = NULL;
    range->cnt = 0;
}

uint64_t na_replay_range_total(const struct na_replay_range *range) {
    uint64_t n = 0;
    for (size_t i = 0; i < range->cnt; i++) {
        n += (uint64_t)(range->parts[i].end - range->parts[i].start);
    }
    return n;
}

uint64_t na_replay_range_done(const struct na_replay_range *range) {
    uint64_t n = 0;
    for (size_t i = 0; i < range->cnt; i++) {
        const struct na_replay_part *p = &range->parts[i];
        int64_t next = p->next > p->end ? p->end : p->next;
        n += (uint64_t)(next - p->start);
    }
    return n;
}

/* Offsets-for-times of @p time_ms on every partition of @p wm. */
static na_err_t times_lookup(rd_kafka_t *rk, const char *topic, struct na_replay_wm *wm,
                             size_t cnt, int64_t time_ms, bool to, int timeout_ms,
                             char *errstr, size_t errstr_size) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)cnt);
    rd_kafka_resp_err_t kerr;
    na_err_t err = NA_OK;
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_topic_partition_list_add(l, topic, wm[i].partition)->offset = time_ms;
    }
    kerr = rd_kafka_offsets_for_times(rk, l, timeout_ms);
    if (kerr) {
        snprintf(errstr, errstr_size, "offsets for time on %s: %s", topic,
                 rd_kafka_err2str(kerr));
        err = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? NA_ERR_TIMEOUT : NA_ERR_KAFKA;
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(l, topic, wm[i].partition);
        if (!tp || tp->err) {
            snprintf(errstr, errstr_size, "offsets for time on %s [%d]: %s", topic,
                     (int)wm[i].partition, tp ? rd_kafka_err2str(tp->err) : "no answer");
            err = NA_ERR_KAFKA;
            goto out;
        }
        if (to) {
            wm[i].to_time_offset = tp->offset;
        } else {
            wm[i].from_time_offset = tp->offset;
        }
    }
out:
    rd_kafka_topic_partition_list_destroy(l);
    return err;
}

na_err_t na_replay_resolve(rd_kafka_t *rk, const char *topic,
                           const struct na_replay_bound *from,
                           const struct na_replay_bound *to, int64_t lateness_ms,
                           int timeout_ms, struct na_replay_range *range, char *errstr,
                           size_t errstr_size) {
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    struct na_replay_wm *wm = NULL;
    size_t cnt = 0;
    na_err_t err = NA_OK;
    rd_kafka_resp_err_t kerr;

    memset(range, 0, sizeof(*range));
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        return NA_ERR_KAFKA;
    }
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (kerr) {
        snprintf(errstr, errstr_size, "metadata of %s: %s", topic,
                 rd_kafka_err2str(kerr));
        err = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? NA_ERR_TIMEOUT : NA_ERR_KAFKA;
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        rd_kafka_resp_err_t terr =
            md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        snprintf(errstr, errstr_size, "topic %s: %s", topic, rd_kafka_err2str(terr));
        err = terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? NA_ERR_NOT_FOUND
                                                              : NA_ERR_KAFKA;
        goto out;
    }
    cnt = (size_t)md->topics[0].partition_cnt;
    if (cnt > NA_REPLAY_MAX_PARTITIONS) {
        snprintf(errstr, errstr_size, "topic %s has %zu partitions", topic, cnt);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    if (cnt && !(wm = calloc(cnt, sizeof(*wm)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        wm[i].partition = md->topics[0].partitions[i].id;
        wm[i].from_time_offset = -1;
        wm[i].to_time_offset = -1;
        kerr = rd_kafka_query_watermark_offsets(rk, topic, wm[i].partition, &wm[i].low,
                                                &wm[i].high, timeout_ms);
        if (kerr) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic,
                     (int)wm[i].partition, rd_kafka_err2str(kerr));
            err = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? NA_ERR_TIMEOUT : NA_ERR_KAFKA;
            goto out;
        }
    }
    if (cnt && from->kind == NA_REPLAY_TIME &&
        (err = times_lookup(rk, topic, wm, cnt, from->time_ms, false, timeout_ms, errstr,
                            errstr_size))) {
        goto out;
    }
    if (cnt && to->kind == NA_REPLAY_TIME &&
        (err = times_lookup(rk, topic, wm, cnt, to->time_ms + lateness_ms, true,
                            timeout_ms, errstr, errstr_size))) {
        goto out;
    }
    err = na_replay_plan(from, to, wm, cnt, range, errstr, errstr_size);
out:
    free(wm);
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return err;
}

/* ---- resume and progress text ---- */

char *na_replay_resume_args(const struct na_replay_range *range) {
    struct na_buf b;
    char ts[NA_RFC3339_MS_LEN];
    na_buf_init(&b);
    na_buf_puts(&b, "--from ");
    for (size_t i = 0; i < range->cnt; i++) {
        na_buf_printf(&b, "%s%d:%" PRId64, i ? "," : "", (int)range->parts[i].partition,
                      range->parts[i].resume);
    }
    na_buf_puts(&b, " --to ");
    for (size_t i = 0; i < range->cnt; i++) {
        na_buf_printf(&b, "%s%d:%" PRId64, i ? "," : "", (int)range->parts[i].partition,
                      range->parts[i].end);
    }
    if (range->ts_from_ms != NA_REPLAY_TS_NONE) {
        na_time_format_rfc3339_ms(range->ts_from_ms, ts);
        na_buf_printf(&b, " --ts-from %s", ts);
    }
    if (range->ts_to_ms != NA_REPLAY_TS_NONE) {
        na_time_format_rfc3339_ms(range->ts_to_ms, ts);
        na_buf_printf(&b, " --ts-to %s", ts);
    }
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
}

void na_replay_progress_format(char *buf, size_t size, uint64_t done, uint64_t total,
                               double rate, bool bar) {
    double pct = total ? 100.0 * (double)done / (double)total : 100.0;
    long long eta = -1;
    char eta_txt[32] = "--:--";
    if (rate > 0 && done <= total) {
        eta = (long long)((double)(total - done) / rate + 0.5);
        if (eta >= 3600) {
            snprintf(eta_txt, sizeof(eta_txt), "%lld:%02lld:%02lld", eta / 3600,
                     eta / 60 % 60, eta % 60);
        } else {
            snprintf(eta_txt, sizeof(eta_txt), "%lld:%02lld", eta / 60, eta % 60);
        }
    }
    if (!bar) {
        snprintf(buf, size,
                 "done=%" PRIu64 " total=%" PRIu64 " pct=%.1f rate=%.0f eta_s=%lld", done,
                 total, pct, rate > 0 ? rate : 0.0, eta);
        return;
    }
    char cells[31];
    int filled = (int)(pct * 30 / 100);
    for (int i = 0; i < 30; i++) {
        cells[i] = i < filled ? '#' : '.';
    }
    cells[30] = '\0';
    snprintf(buf, size, "[%s] %5.1f%%  %" PRIu64 "/%" PRIu64 "  %.0f msg/s  ETA %s",
             cells, pct, done, total, rate > 0 ? rate : 0.0, eta_txt);
}

/* ---- backtest ---- */

void na_replay_diff_init(struct na_replay_diff *diff) {
    memset(diff, 0, sizeof(*diff));
}

void na_replay_diff_cleanup(struct na_replay_diff *diff) {
    if (!diff) {
        return;
    }
    for (size_t i = 0; i < diff->cnt; i++) {
        free(diff->v[i].topic);
        free(diff->v[i].title);
    }
    free(diff->v);
    na_replay_diff_init(diff);
}

static bool has_topic(const struct na_classification *c, const char *topic) {
    for (size_t i = 0; i < c->matches_cnt; i++) {
        if (!strcmp(c->matches[i].topic, topic)) {
            return true;
        }
    }
    return false;
}

static na_err_t diff_push(struct na_replay_diff *diff, const struct na_article *a,
                          const char *topic, bool gained) {
    if (diff->cnt == diff->size) {
        size_t n = diff->size ? diff->size * 2 : 16;
        struct na_replay_change *v = realloc(diff->v, n * sizeof(*v));
        if (!v) {
            return NA_ERR_NOMEM;
        }
        diff->v = v;
        diff->size = n;
    }
    struct na_replay_change *c = &diff->v[diff->cnt];
    memset(c, 0, sizeof(*c));
    c->topic = na_strdup(topic);
    c->title = na_strdup(a->title ? a->title : "(untitled)");
    if (!c->topic || !c->title) {
        free(c->topic);
        free(c->title);
        return NA_ERR_NOMEM;
    }
    memcpy(c->article_id, a->id, sizeof(c->article_id));
    c->gained = gained;
    diff->cnt++;
    return NA_OK;
}

na_err_t na_replay_diff_add(struct na_replay_diff *diff, const struct na_article *a,
                            const struct na_classification *cur,
                            const struct na_classification *base) {
    na_err_t err;
    diff->articles++;
    for (size_t i = 0; i < cur->matches_cnt; i++) {
        if (has_topic(base, cur->matches[i].topic)) {
            diff->same++;
        } else if ((err = diff_push(diff, a, cur->matches[i].topic, true))) {
            return err;
        }
    }
    for (size_t i = 0; i < base->matches_cnt; i++) {
        if (!has_topic(cur, base->matches[i].topic) &&
            (err = diff_push(diff, a, base->matches[i].topic, false))) {
            return err;
        }
    }
    return NA_OK;
}

/* Titles on one line: control bytes become spaces. */
static void print_title(FILE *fp, const char *s) {
    for (; *s; s++) {
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, fp);
    }
}

void na_replay_diff_print(const struct na_replay_diff *diff, const char *const *topics,
                          FILE *fp) {
    size_t gained_all = 0, lost_all = 0;
    for (const char *const *t = topics; *t; t++) {
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < diff->cnt; i++) {
                const struct na_replay_change *c = &diff->v[i];
                if (strcmp(c->topic, *t) || c->gained != (pass == 0)) {
                    continue;
                }
                fprintf(fp, "%c %s  ", c->gained ? '+' : '-', c->topic);
                print_title(fp, c->title);
                fprintf(fp, "  (%s)\n", c->article_id);
            }
        }
    }
    for (const char *const *t = topics; *t; t++) {
        size_t gained = 0, lost = 0;
        for (size_t i = 0; i < diff->cnt; i++) {
            if (!strcmp(diff->v[i].topic, *t)) {
                gained += diff->v[i].gained;
                lost += !diff->v[i].gained;
            }
        }
        gained_all += gained;
        lost_all += lost;
        fprintf(fp, "%s: +%zu -%zu\n", *t, gained, lost);
    }
    fprintf(fp, "total: +%zu -%zu (unchanged %" PRIu64 ", articles %" PRIu64 ")\n",
            gained_all, lost_all, diff->same, diff->articles);
}

/* ---- classified line ---- */

static json_t *match_json(const struct na_match *m) {
    json_t *ev = json_array();
    for (size_t i = 0; ev && i < m->evidence_cnt; i++) {
        const struct na_evidence *e = &m->evidence[i];
        json_array_append_new(ev,
                              json_pack("{s:s, s:s, s:s, s:I}", "term", e->term,
                                        "matched", e->matched ? e->matched : "", "field",
                                        e->field, "offset", (json_int_t)e->offset));
    }
    return json_pack("{s:s, s:f, s:f, s:o, s:o}", "topic", m->topic, "score", m->score,
                     "threshold", m->threshold, "evidence", ev ? ev : json_array(),
                     "snippet", m->snippet ? json_string(m->snippet) : json_null());
}

char *na_replay_classified_json(const struct na_article *a,
                                const struct na_classification *cls) {
    json_t *topics = json_array();
    json_t *root;
    char *out;
    for (size_t i = 0; topics && i < cls->matches_cnt; i++) {
        json_array_append_new(topics, match_json(&cls->matches[i]));
    }
    root = json_pack("{s:s, s:o, s:o}", "id", a->id, "title",
                     a->title ? json_string(a->title) : json_null(), "topics",
                     topics ? topics : json_array());
    if (!root) {
        return NULL;
    }
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    return out;
}

/* ---- clients ---- */

static na_err_t apply_props(rd_kafka_conf_t *kconf, const struct na_kafka_props *props,
                            char *errstr, size_t errstr_size) {
    for (size_t i = 0; props && i < props->cnt; i++) {
        char key[256];
        const char *eq = strchr(props->kv[i], '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - props->kv[i]), props->kv[i]);
        if (rd_kafka_conf_set(kconf, key, eq + 1, errstr, errstr_size) !=
            RD_KAFKA_CONF_OK) {
            return NA_ERR_CONFIG;
        }
    }
    return NA_OK;
}

rd_kafka_t *na_replay_consumer_new(const char *brokers,
                                   const struct na_kafka_props *props, char *errstr,
                                   size_t errstr_size) {
    rd_kafka_conf_t *kconf = na_kafka_conf_new(brokers, NULL, errstr, errstr_size);
    rd_kafka_t *rk = NULL;
    char group[96];
    if (!kconf) {
        return NULL;
    }
    /* The prefetch bound, -X (which may change it), then what keeps the live
     * group safe: a group of our own that is never joined (assign, not
     * subscribe) and never committed to. */
    snprintf(group, sizeof(group), "newsalert-replay-%lld-%ld", (long long)na_now_ms(),
             random() % 100000);
    /* fetch.wait.max.ms: the broker holds a fetch at a partition's end that
     * long, and the fetch of every other partition from that broker waits
     * behind it; a replay knows its ends, so a short wait.
     * max.partition.fetch.bytes: what one fetch brings of a partition fits
     * in the partition's share of the merge, which would pause it (and drop
     * what librdkafka prefetched) at every fetch of 1 MiB. The user's -X may
     * set others. */
    if (na_kafka_conf_prefetch_defaults(kconf, errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "fetch.wait.max.ms", "10", errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "max.partition.fetch.bytes", "262144", errstr,
                          errstr_size) ||
        apply_props(kconf, props, errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "client.id", "newsalert-replay", errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "group.id", group, errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "enable.auto.offset.store", "false", errstr,
                          errstr_size) ||
        na_kafka_conf_set(kconf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
        na_kafka_conf_set(kconf, "enable.partition.eof", "true", errstr, errstr_size)) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* ---- the run ---- */

/* A set of strings (alert id + route) seen in this run, so that an article
 * read twice (re-published before compaction) alerts once. */
struct strset {
    char **v;
    size_t size; /* power of two */
    size_t cnt;
};

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

/* @returns 1 added, 0 already there, -1 no memory. */
static int strset_add(struct strset *set, const char *s) {
    if (na_fault("replay_seen")) {
        return -1;
    }
    if ((set->cnt + 1) * 2 > set->size) {
        size_t n = set->size ? set->size * 2 : 1024;
        char **v = calloc(n, sizeof(*v));
        if (!v) {
            return -1;
        }
        for (size_t i = 0; i < set->size; i++) {
            if (set->v[i]) {
                size_t j = fnv1a(set->v[i]) & (n - 1);
                while (v[j]) {
                    j = (j + 1) & (n - 1);
                }
                v[j] = set->v[i];
            }
        }
        free(set->v);
        set->v = v;
        set->size = n;
    }
    size_t j = fnv1a(s) & (set->size - 1);
    while (set->v[j]) {
        if (!strcmp(set->v[j], s)) {
            return 0;
        }
        j = (j + 1) & (set->size - 1);
    }
    if (!(set->v[j] = na_strdup(s))) {
        return -1;
    }
    set->cnt++;
    return 1;
}

static void strset_cleanup(struct strset *set) {
    for (size_t i = 0; i < set->size; i++) {
        free(set->v[i]);
    }
    free(set->v);
    memset(set, 0, sizeof(*set));
}

/* An output line held back until its record is below the resume offset. */
struct held {
    struct held *next;
    int64_t offset;
    char id[NA_SHA256_HEX_LEN + 1]; /* the article's, key of --output-topic */
    char line[];
};

/* The held lines of one partition, in offset order. */
struct held_queue {
    struct held *head, *tail;
};

/* Records with the workers at once. */
#define NA_REPLAY_WORK_WINDOW 256
/* A ledger record the broker refused is written again after this backoff,
 * doubling up to the max, as the daemon does (jobs.c). */
#define NA_REPLAY_LEDGER_RETRY_MIN_MS 250
#define NA_REPLAY_LEDGER_RETRY_MAX_MS 30000
/* How often alerts held for another member's hand-over look at the ledger
 * (its answers change only as records are followed), as the daemon does. */
#define NA_REPLAY_HANDOVER_CHECK_MS 10

struct replay {
    const struct na_replay_opts *opts;
    struct na_replay_range *range;
    struct na_replay_stats *stats;
    rd_kafka_t *out_rk; /* producer of --output-topic */
    na_deliver_t *deliver;
    na_ledger_t *ledger;
    na_stories_t *stories; /* as the live consumer groups them (conf "stories") */
    na_tracker_t *tracker;
    struct strset seen;
    struct job *jobs;    /* every job not yet ended, freed at the end if abandoned */
    struct job *retries; /* delivered, their ledger record to be written again */
    size_t retries_cnt;
    size_t awaiting; /* jobs waiting for another member's hand-over */
    int64_t handover_checked_ms;
    bool ledger_following;   /* the load is over: records now come from the others */
    struct held_queue *held; /* per range->parts[i]: lines not yet written */
    size_t held_bytes;
    na_metric_t *records;  /* newsalert_replay_records_total */
    na_workq_t *workq;     /* decode and classify on worker threads, or NULL */
    na_merge_t *merge;     /* records read, in the order they go on (merge.h) */
    struct mstate *mstate; /* per range->parts[i]: what the merge was given */
    size_t merge_cap;      /* bytes a partition may hold in the merge */
    bool fatal;
    bool out_failed;
    /* A delivered alert's ledger record was given up on: the run stops
     * (what it would send now could not be recorded either). */
    bool ledger_failed;
    bool closing; /* the drain is over: a refused record is not tried again */
    char errstr[512];
};

/* A partition as the merge sees it. */
struct mstate {
    int64_t next; /* next offset it takes */
    bool paused;  /* its fetches paused: it holds merge_cap bytes or more */
};

/* One (alert, route) delivery in flight; then its ledger record. */
struct job {
    struct job *prev, *next; /* replay.jobs */
    struct replay *r;
    struct na_tracker_entry *entry;
    const struct na_route *route;
    char alert_id[NA_SHA256_HEX_LEN + 1];
    char *alert_json;
    struct na_ledger_delivery del; /* the outcome its ledger record carries */
    struct job *rnext;             /* replay.retries */
    int attempts;                  /* ledger writes refused so far */
    int64_t since_ms;              /* first refusal (monotonic ms) */
    int64_t due_ms;                /* next write (monotonic ms) */
    na_err_t err;                  /* why the last write failed */
    /* Marked "pending" by another member (it is sending it): held, with its
     * rendered body, until the ledger says how that ended or until_ms. */
    bool awaiting;
    char *body;
    size_t len;
    int64_t mark_until_ms; /* the mark's until_ms when last read */
    int64_t hold_until_ms; /* held no longer than this (wall ms) */
};

static void job_free(struct job *j) {
    if (!j) {
        return;
    }
    if (j->r) {
        if (j->prev) {
            j->prev->next = j->next;
        } else {
            j->r->jobs = j->next;
        }
        if (j->next) {
            j->next->prev = j->prev;
        }
        j->r->awaiting -= j->awaiting;
    }
    free(j->alert_json);
    free(j->body);
    free(j);
}

static void on_output_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                               void *opaque) {
    struct replay *r = opaque;
    (void)rk;
    if (rkm->err) {
        r->out_failed = true;
        snprintf(r->errstr, sizeof(r->errstr), "producing to %s: %s",
                 r->opts->output_topic, rd_kafka_err2str(rkm->err));
    }
}

/*
 * The ledger refused the record of a delivered alert (or could not take
 * it). Counting the article finished would let the resume position pass
 * it, and a later run, finding nothing in the ledger, would send the alert
 * again. So the record is written again with backoff, as the daemon does.
 * Only once it has been refused for write_stall, or when the run's drain
 * is over, is it given up: the delivery counts as failed, its article
 * stays unfinished (the resume position stays below it) and the run stops.
 */
static void ledger_refused(struct job *j, na_err_t err) {
    struct replay *r = j->r;
    int64_t now = na_mono_ms();
    int64_t delay = NA_REPLAY_LEDGER_RETRY_MIN_MS;

    if (!j->attempts) {
        j->since_ms = now;
    }
    j->attempts++;
    j->err = err;
    if (r->closing || now - j->since_ms >= r->opts->conf->write_stall_ms) {
        r->stats->failed++;
        r->ledger_failed = true;
        na_metrics_inc("newsalert_replay_alerts_failed_total",
                       "Alerts given up on during "
                       "a replay.",
                       NULL);
        na_log(NA_LOG_ERROR, "replay", "ledger_gave_up",
               "route=%s alert=%s attempts=%d failing_ms=%lld err=%s",
               na_log_q(j->route->name), j->alert_id, j->attempts,
               (long long)(now - j->since_ms), na_log_q(na_err2str(err)));
        job_free(j); /* its tracker entry stays unfinished */
        return;
    }
    for (int i = 1; i < j->attempts && delay < NA_REPLAY_LEDGER_RETRY_MAX_MS; i++) {
        delay *= 2;
    }
    if (delay > NA_REPLAY_LEDGER_RETRY_MAX_MS) {
        delay = NA_REPLAY_LEDGER_RETRY_MAX_MS;
    }
    delay = delay / 2 + (int64_t)(random() % (delay / 2 + 1));
    j->due_ms = now + delay;
    j->rnext = r->retries;
    r->retries = j;
    r->retries_cnt++;
    na_metrics_inc("newsalert_replay_ledger_retries_total",
                   "Ledger records of a replay written again after the broker "
                   "refused them.",
                   NULL);
    na_log(NA_LOG_WARN, "replay", "ledger_write_failed",
           "route=%s alert=%s attempt=%d retry_in_ms=%lld err=%s",
           na_log_q(j->route->name), j->alert_id, j->attempts, (long long)delay,
           na_log_q(na_err2str(err)));
}

/* Write the ledger record of the delivered alert of @p j; on_ledger_confirm
 * finishes the job. */
static void ledger_write(struct job *j) {
    na_err_t err = na_ledger_record(j->r->ledger, j->alert_id, j->route->name, &j->del,
                                    j->alert_json, j);
    if (err) {
        ledger_refused(j, err);
    }
}

/* Write again the ledger records whose backoff is over (all of them when
 * @p all). */
static void run_ledger_retries(struct replay *r, bool all) {
    int64_t now = na_mono_ms();
    struct job *due = NULL;
    for (struct job **pp = &r->retries; *pp;) {
        struct job *j = *pp;
        if (!all && j->due_ms > now) {
            pp = &j->rnext;
            continue;
        }
        *pp = j->rnext;
        r->retries_cnt--;
        j->rnext = due;
        due = j;
    }
    while (due) {
        struct job *j = due;
        due = j->rnext;
        j->rnext = NULL;
        if (r->closing) {
            ledger_refused(j, j->err); /* gives up */
        } else {
            ledger_write(j);
        }
    }
}

/* Ledger confirmation: the delivery is durable; its article may be resumed past. */
static void on_ledger_confirm(void *opaque, na_err_t err, void *ctx) {
    struct job *j = opaque;
    (void)ctx;
    if (err) {
        ledger_refused(j, err);
        return;
    }
    na_tracker_done(j->entry);
    job_free(j);
}

static void on_delivered(void *opaque, const struct na_delivery_result *res, void *ctx) {
    struct replay *r = ctx;
    struct job *j = opaque;
    if (res->outcome == NA_OUTCOME_OK) {
        struct na_ledger_delivery d = {"delivered", res->status, res->attempts,
                                       na_now_ms(), 0};
        r->stats->sent++;
        na_metrics_inc("newsalert_replay_alerts_sent_total",
                       "Alerts a route accepted "
                       "during a replay.",
                       NULL);
        na_log(NA_LOG_INFO, "replay", "alert_sent", "route=%s alert=%s status=%ld",
               na_log_q(j->route->name), j->alert_id, res->status);
        j->del = d;
        ledger_write(j); /* the job ends once the broker has the record */
        return;
    }
    r->stats->failed++;
    na_metrics_inc("newsalert_replay_alerts_failed_total",
                   "Alerts given up on during "
                   "a replay.",
                   NULL);
    na_log(NA_LOG_ERROR, "replay", "alert_failed",
           "route=%s alert=%s status=%ld attempts=%d err=%s", na_log_q(j->route->name),
           j->alert_id, res->status, res->attempts, na_log_q(res->error));
    na_tracker_done(j->entry);
    job_free(j);
}

/* How long @p j holds for a mark until @p until_ms: until then, but no
 * longer than a member holds a hand-over from now (a new mark, e.g. of a
 * member that took the hand-over and gave it up in turn, starts anew). */
static void hold_until(struct job *j, int64_t until_ms, int64_t now_ms) {
    int64_t most =
        now_ms + j->r->opts->conf->deliver_timeout_ms + NA_LEDGER_HANDOVER_SLACK_MS;
    j->mark_until_ms = until_ms;
    j->hold_until_ms = until_ms < most ? until_ms : most;
}

/* Post @p alert to @p route; with @p until_ms in the future (the ledger
 * marks it "pending": another member is sending it), hold it until
 * check_handovers() knows how that ended. */
static void post_alert(struct replay *r, struct na_tracker_entry *entry,
                       const struct na_alert *alert, const struct na_route *route,
                       const char *alert_json, int64_t until_ms) {
    struct na_buf body;
    struct job *j = calloc(1, sizeof(*j));
    na_buf_init(&body);
    if (!j || !(j->alert_json = na_strdup(alert_json)) ||
        route->format->render(alert, &body) || body.oom) {
        na_log(NA_LOG_ERROR, "replay", "render_failed", "route=%s alert=%s",
               na_log_q(route->name), alert->id);
        r->stats->failed++;
        na_buf_cleanup(&body);
        job_free(j);
        return;
    }
    j->r = r;
    j->next = r->jobs;
    if (r->jobs) {
        r->jobs->prev = j;
    }
    r->jobs = j;
    j->entry = entry;
    j->route = route;
    memcpy(j->alert_id, alert->id, sizeof(j->alert_id));
    entry->pending++;
    if (until_ms > na_now_ms()) {
        hold_until(j, until_ms, na_now_ms());
        j->awaiting = true;
        j->len = body.len;
        j->body = na_buf_steal(&body);
        r->awaiting++;
        na_log(NA_LOG_INFO, "replay", "handover_wait", "route=%s alert=%s until_ms=%lld",
               na_log_q(route->name), alert->id, (long long)until_ms);
        return;
    }
    size_t len = body.len;
    if (na_deliver_submit_steal(r->deliver, route, alert->id, na_buf_steal(&body), len,
                                NULL, j)) {
        entry->pending--;
        r->stats->failed++;
        job_free(j);
    }
}

/* Alerts held for another member's hand-over, with the daemon's rule
 * (handover.c): none is sent once the ledger says it was sent (or parked:
 * the retry topic's reader sends it); one is sent here once it was
 * released, or once until_ms passed (that member died: a mark nobody ends
 * must not lose the alert). A dead-lettered one is sent, as replay sends
 * every alert the ledger records as dead-lettered. */
static void check_handovers(struct replay *r) {
    int64_t now = na_now_ms();
    if (!r->awaiting || (now >= r->handover_checked_ms &&
                         now - r->handover_checked_ms < NA_REPLAY_HANDOVER_CHECK_MS)) {
        return;
    }
    r->handover_checked_ms = now;
    for (struct job *j = r->jobs, *next; r->awaiting && j; j = next) {
        next = j->next;
        if (!j->awaiting) {
            continue;
        }
        int64_t until = 0;
        enum na_ledger_state ls =
            na_ledger_state(r->ledger, j->alert_id, j->route->name, &until);
        if (ls == NA_LEDGER_SENT || ls == NA_LEDGER_PARKED) {
            r->stats->already_sent++;
            na_log(NA_LOG_INFO, "replay", "handover_done", "route=%s alert=%s outcome=%s",
                   na_log_q(j->route->name), j->alert_id,
                   ls == NA_LEDGER_SENT ? "sent" : "parked");
            na_tracker_done(j->entry);
            job_free(j);
            continue;
        }
        if (ls == NA_LEDGER_PENDING && until != j->mark_until_ms) {
            hold_until(j, until, now);
        }
        if (ls == NA_LEDGER_PENDING && until > now && j->hold_until_ms > now) {
            continue;
        }
        char *body = j->body;
        j->body = NULL;
        j->awaiting = false;
        r->awaiting--;
        na_log(NA_LOG_INFO, "replay", "handover_send", "route=%s alert=%s reason=%s",
               na_log_q(j->route->name), j->alert_id,
               ls == NA_LEDGER_PENDING ? "expired"
               : ls == NA_LEDGER_DEAD  ? "dead_lettered"
                                       : "released");
        if (na_deliver_submit_steal(r->deliver, j->route, j->alert_id, body, j->len, NULL,
                                    j)) {
            r->stats->failed++;
            na_tracker_done(j->entry);
            job_free(j);
        }
    }
}

/* @p v as jansson dumps it compactly: the story member is an object of
 * strings, integers and nulls (pipeline.c); anything else is left to
 * jansson. */
static void put_json(struct na_buf *b, const json_t *v) {
    const char *key;
    json_t *m;
    bool first = true;
    char *text;
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (strlen(json_string_value(v)) == json_string_length(v)) {
            na_buf_json_string(b, json_string_value(v));
            return;
        }
        break;
    case JSON_INTEGER:
        na_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return;
    case JSON_NULL:
        na_buf_puts(b, "null");
        return;
    case JSON_OBJECT:
        na_buf_puts(b, "{");
        json_object_foreach((json_t *)v, key, m) {
            na_buf_puts(b, first ? "" : ",");
            na_buf_json_string(b, key);
            na_buf_puts(b, ":");
            put_json(b, m);
            first = false;
        }
        na_buf_puts(b, "}");
        return;
    default:
        break;
    }
    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) {
        b->oom = true;
        return;
    }
    na_buf_puts(b, text);
    free(text);
}

static void put_str_or_null(struct na_buf *b, const char *s) {
    if (s) {
        na_buf_json_string(b, s);
    } else {
        na_buf_puts(b, "null");
    }
}

char *na_replay_linked_json(const struct na_decision *d, const struct na_alert *alert) {
    const struct na_article *a = alert->article;
    const char *title = a->title ? a->title : "";
    const char *strs[] = {alert->id, a->id,  d->story_id,   alert->match->topic,
                          title,     a->url, a->source_name};
    char pub[NA_RFC3339_LEN] = "";
    struct na_buf b;
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, pub);
    }
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strs[i] && !na_utf8_valid(strs[i], strlen(strs[i]))) {
            /* jansson's way, which refuses it (no line), as before */
            json_t *root = json_pack(
                "{s:s, s:s, s:s, s:s, s:O?, s:{s:s, s:s?, s:s?, s:s?}}", "linked",
                alert->id, "article_id", a->id, "story_id", d->story_id, "topic",
                alert->match->topic, "story", d->story, "article", "title", title, "url",
                a->url, "source", a->source_name, "published_at", *pub ? pub : NULL);
            char *text =
                root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(root);
            return text;
        }
    }
    /* Written directly: packing and dumping it with jansson took a tenth
     * of a backfill's time, one line per later report of a story. */
    na_buf_init(&b);
    na_buf_puts(&b, "{\"linked\":");
    na_buf_json_string(&b, alert->id);
    na_buf_puts(&b, ",\"article_id\":");
    na_buf_json_string(&b, a->id);
    na_buf_puts(&b, ",\"story_id\":");
    na_buf_json_string(&b, d->story_id);
    na_buf_puts(&b, ",\"topic\":");
    na_buf_json_string(&b, alert->match->topic);
    na_buf_puts(&b, ",\"story\":");
    if (d->story) {
        put_json(&b, d->story);
    } else {
        na_buf_puts(&b, "null");
    }
    na_buf_puts(&b, ",\"article\":{\"title\":");
    na_buf_json_string(&b, title);
    na_buf_puts(&b, ",\"url\":");
    put_str_or_null(&b, a->url);
    na_buf_puts(&b, ",\"source\":");
    put_str_or_null(&b, a->source_name);
    na_buf_puts(&b, ",\"published_at\":");
    put_str_or_null(&b, *pub ? pub : NULL);
    na_buf_puts(&b, "}}");
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
}

/* --dry-run: one "linked" line for a later report of a story that alerted. */
static void print_linked(FILE *out, const struct na_decision *d,
                         const struct na_alert *alert) {
    char *text = na_replay_linked_json(d, alert);
    if (text) {
        fputs(text, out);
        fputc('\n', out);
    }
    free(text);
}

/* What the pipeline decided, acted on: print the alerts a route still
 * needs (--dry-run) and post them (--routes), each (alert, route) once per
 * run. Alert ids are the live consumer's (one per story and topic when
 * stories are on), so the ledger recognises what the daemon sent. */
static void raise_alerts(struct replay *r, struct na_tracker_entry *entry,
                         const struct na_decision *d) {
    const struct na_replay_opts *o = r->opts;
    const struct na_routes *routes = &o->conf->routes;
    char key[NA_SHA256_HEX_LEN + 260];

    for (size_t i = 0; i < d->alerts_cnt; i++) {
        const struct na_decided_alert *da = &d->alerts[i];
        const struct na_alert *alert = &da->alert;
        json_t *root;
        json_t *names = json_array();
        char *text = NULL;
        bool any = !routes->cnt;
        bool wanted = !routes->cnt; /* a route wants this topic */
        bool nomem = !names;
        int added;

        for (size_t k = 0; !nomem && k < routes->cnt && k < d->routes_cnt; k++) {
            const struct na_route *route = &routes->v[k];
            if (da->need[k] == NA_NEED_NONE) {
                continue;
            }
            wanted = true;
            if (da->need[k] == NA_NEED_SENT || da->need[k] == NA_NEED_PARKED) {
                r->stats->already_sent++;
                continue;
            }
            snprintf(key, sizeof(key), "%s\t%s", alert->id, route->name);
            added = strset_add(&r->seen, key);
            if (added < 0 ||
                (added && json_array_append_new(names, json_string(route->name)))) {
                nomem = true; /* not taken for one this run already has */
            } else if (added) {
                any = true;
            }
        }
        if (!nomem && !routes->cnt) {
            added = strset_add(&r->seen, alert->id);
            nomem = added < 0;
            any = added > 0;
        }
        if (nomem) {
            r->fatal = true;
            snprintf(r->errstr, sizeof(r->errstr), "out of memory");
            json_decref(names);
            return;
        }
        /* The alert's text only for an alert this run raises: a later
         * report of a story (most of a backfill's matches) is one "linked"
         * line, and making the whole alert for it took a third of replay's
         * time (docs/benchmarks.md). */
        root = any ? na_alert_to_json(alert) : NULL;
        if (root && names && routes->cnt) {
            json_object_set(root, "routes", names);
        }
        text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        if (any && !text) {
            r->fatal = true;
            snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        } else if (any) {
            r->stats->alerts++;
            if (o->dry_run) {
                fputs(text, o->dry_run);
                fputc('\n', o->dry_run);
            }
            if (o->post_routes) {
                /* The ledger records what restarts need too (the story's
                 * signature), which the users' alert/v1 leaves out. */
                json_t *lroot = na_alert_to_ledger_json(alert);
                char *ltext =
                    lroot ? json_dumps(lroot, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
                size_t k;
                json_t *n;
                json_decref(lroot);
                if (!ltext) {
                    r->fatal = true;
                    snprintf(r->errstr, sizeof(r->errstr), "out of memory");
                }
                json_array_foreach(names, k, n) {
                    for (size_t x = 0; ltext && x < routes->cnt; x++) {
                        if (!strcmp(routes->v[x].name, json_string_value(n))) {
                            post_alert(r, entry, alert, &routes->v[x], ltext,
                                       da->need[x] == NA_NEED_PENDING
                                           ? da->pending_until_ms[x]
                                           : 0);
                        }
                    }
                }
                free(ltext);
            }
        } else if (wanted && d->has_story && !d->story_new) {
            /* A later report of a story whose alert this run (or the
             * ledger) already has: linked, as the daemon links it. */
            r->stats->linked++;
            if (o->dry_run) {
                print_linked(o->dry_run, d, alert);
            }
        }
        free(text);
        json_decref(names);
        json_decref(root);
    }
}

/* Write one classified line to the outputs. */
static void emit_line(struct replay *r, struct held *h) {
    const struct na_replay_opts *o = r->opts;
    size_t len = strlen(h->line);
    if (o->output) {
        fputs(h->line, o->output);
        fputc('\n', o->output);
    }
    if (r->out_rk) {
        rd_kafka_resp_err_t kerr;
        do {
            /* F_COPY: the held line is freed by its queue. */
            kerr = rd_kafka_producev(
                r->out_rk, RD_KAFKA_V_TOPIC(o->output_topic),
                RD_KAFKA_V_KEY(h->id, strlen(h->id)), RD_KAFKA_V_VALUE(h->line, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_HEADER("content-type", "application/json", -1),
                RD_KAFKA_V_END);
            if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(r->out_rk, 100);
            }
        } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (kerr) {
            r->out_failed = true;
            snprintf(r->errstr, sizeof(r->errstr), "producing to %s: %s", o->output_topic,
                     rd_kafka_err2str(kerr));
        }
    }
    r->stats->output_lines++;
}

/*
 * The classified line of the record at @p offset of range->parts[@p pi].
 * It is held until every record of its partition up to it is finished (its
 * alerts delivered or given up), and written by release_lines(): the
 * outputs then hold exactly the records below the resume offsets, so a
 * resumed run (--append) adds the rest without losing or repeating a line.
 */
static void hold_output(struct replay *r, size_t pi, int64_t offset,
                        const struct na_article *a, const struct na_classification *cls) {
    char *line = na_replay_classified_json(a, cls);
    size_t len = line ? strlen(line) : 0;
    struct held *h = line ? malloc(sizeof(*h) + len + 1) : NULL;
    if (!h) {
        free(line);
        r->fatal = true;
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        return;
    }
    h->next = NULL;
    h->offset = offset;
    snprintf(h->id, sizeof(h->id), "%s", a->id);
    memcpy(h->line, line, len + 1);
    free(line);
    struct held_queue *q = &r->held[pi];
    if (q->tail) {
        q->tail->next = h;
    } else {
        q->head = h;
    }
    q->tail = h;
    r->held_bytes += sizeof(*h) + len + 1;
}

/* Write the held lines below each partition's resume offset. */
static void release_lines(struct replay *r) {
    for (size_t i = 0; i < r->range->cnt; i++) {
        struct held_queue *q = &r->held[i];
        while (q->head && q->head->offset < r->range->parts[i].resume && !r->out_failed) {
            struct held *h = q->head;
            emit_line(r, h);
            q->head = h->next;
            if (!q->head) {
                q->tail = NULL;
            }
            r->held_bytes -= sizeof(*h) + strlen(h->line) + 1;
            free(h);
        }
    }
}

/* Drop the lines never released: their records are at or past the resume
 * offsets, so a resumed run reads them again. */
static void held_cleanup(struct replay *r) {
    for (size_t i = 0; r->held && i < r->range->cnt; i++) {
        while (r->held[i].head) {
            struct held *h = r->held[i].head;
            r->held[i].head = h->next;
            free(h);
        }
    }
    free(r->held);
    r->held = NULL;
    r->held_bytes = 0;
}

static struct na_replay_part *find_part(struct na_replay_range *range,
                                        int32_t partition) {
    for (size_t i = 0; i < range->cnt; i++) {
        if (range->parts[i].partition == partition) {
            return &range->parts[i];
        }
    }
    return NULL;
}

/* Pause or resume the fetches of one partition. */
static void fetch_pause(struct replay *r, int32_t partition, bool pause) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->opts->conf->topic, partition);
    if (pause) {
        rd_kafka_pause_partitions(r->opts->rk, l);
    } else {
        rd_kafka_resume_partitions(r->opts->rk, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void part_finish(struct replay *r, struct na_replay_part *p) {
    p->done = true;
    fetch_pause(r, p->partition, true); /* stop fetching past the end */
}

/* One record in range on its way through the stages: decoded and
 * classified by work() (on a worker thread when there are workers), then
 * finished by finish() on the main thread in the order records were read. */
struct rrec {
    rd_kafka_message_t *rkm; /* the record as read; NULL: copied (copy) */
    struct mrec *copy;       /* the record as the merge kept it */
    const void *payload;     /* in rkm or copy */
    size_t len;
    int32_t partition;
    int64_t offset;
    struct na_replay_part *p;
    struct na_tracker_entry *entry;
    bool filtered; /* outside the time bounds: nothing to do */
    na_err_t err;  /* NA_ERR_NOMEM from a stage */
    struct na_decision d;
    struct na_classification base; /* by the baseline rules */
};

/* A record the merge keeps: a copy, so that the fetch it came in is freed
 * at once (each record librdkafka hands out holds its whole fetch
 * response: holding a few records of many fetches kept 90 MB resident on a
 * 24-partition topic). An end mark has end set and no payload. */
struct mrec {
    int32_t partition;
    bool end;
    int64_t offset;
    int64_t ts;
    size_t len;
    char payload[];
};

static void rrec_free(struct rrec *x) {
    if (x->rkm) {
        rd_kafka_message_destroy(x->rkm);
    }
    free(x->copy);
    free(x);
}

/* na_work_fn: decode and classify one record (the baseline too). Reads
 * only the rules, which any number of threads may use at once, and reads
 * a matching article's story features (na_story_read()). */
static void work(void *vx, void *vr) {
    struct rrec *x = vx;
    const struct replay *r = vr;
    const struct na_replay_opts *o = r->opts;
    /* a matching article's story features are read here too (not
     * r->stories, which finish() alone uses: only whether it is set) */
    struct na_pipeline pl = {
        .rules = o->rules, .read_stories = r->stories && (o->dry_run || o->post_routes)};

    na_decision_init(&x->d);
    memset(&x->base, 0, sizeof(x->base));
    if (x->filtered) {
        return;
    }
    x->err = na_pipeline_decode(&pl, x->payload, x->len, &x->d);
    if (x->err || !x->d.decoded) {
        return;
    }
    x->err = na_pipeline_classify(&pl, &x->d);
    if (!x->err && o->baseline) {
        x->err = na_rules_classify(o->baseline, &x->d.article, &x->base);
    }
}

/* Act on a decoded and classified record, in read order: the diff, the
 * output line, the story and the alerts. Frees @p x. */
static void finish(struct replay *r, struct rrec *x) {
    const struct na_replay_opts *o = r->opts;
    struct na_pipeline pl = {o->rules, r->stories, r->ledger, &o->conf->routes, false};
    struct na_replay_part *p = x->p;

    if (x->filtered) {
        r->stats->filtered++;
        goto out;
    }
    if (x->err && !x->d.decoded) {
        goto nomem;
    }
    if (!x->d.decoded) {
        r->stats->poison++;
        na_log(NA_LOG_WARN, "replay", "poison_record", "partition=%d offset=%lld err=%s",
               (int)x->partition, (long long)x->offset, na_log_q(x->d.error));
        goto out;
    }
    r->stats->articles++;
    if (x->err) {
        na_log(NA_LOG_ERROR, "replay", "classify_failed", "article=%s", x->d.article.id);
        goto nomem;
    }
    if (o->baseline && o->diff &&
        na_replay_diff_add(o->diff, &x->d.article, &x->d.cls, &x->base)) {
        goto nomem;
    }
    if (o->output || r->out_rk) {
        hold_output(r, (size_t)(p - r->range->parts), x->offset, &x->d.article,
                    &x->d.cls);
    }
    if (o->dry_run || o->post_routes) {
        if (na_pipeline_alerts(&pl, &x->d) ||
            (o->post_routes && na_pipeline_signature(&pl, &x->d))) {
            goto nomem;
        }
        raise_alerts(r, x->entry, &x->d);
    }
    goto out;
nomem:
    r->fatal = true;
    snprintf(r->errstr, sizeof(r->errstr), "out of memory");
out:
    na_classification_cleanup(&x->base);
    na_decision_cleanup(&x->d);
    na_tracker_done(x->entry);
    rrec_free(x);
}

/* Back-pressure: do not start alerts ahead of the deliveries without
 * limit, nor hold lines behind a slow delivery without limit. While a
 * ledger record waits to be written again, reading waits too: an alert
 * sent now could not be recorded either. */
static bool backlogged(const struct replay *r) {
    return r->deliver &&
           (r->retries_cnt ||
            na_deliver_pending(r->deliver) >= (size_t)r->opts->conf->max_pending ||
            r->held_bytes > NA_MAX_REPLAY_HELD_BYTES);
}

/* Finish the records the workers are done with, in read order, while there
 * is room for their alerts; wait up to @p timeout_ms for the first.
 * @returns how many. */
static size_t collect(struct replay *r, int timeout_ms) {
    struct rrec *x;
    size_t n = 0;
    while (r->workq && !backlogged(r) &&
           (x = na_workq_take(r->workq, n ? 0 : timeout_ms))) {
        finish(r, x);
        n++;
    }
    return n;
}

/* Drop what the workers still hold (the run ends early): unfinished, so the
 * resume position stays below them. */
static void discard(struct replay *r) {
    while (r->workq && na_workq_pending(r->workq)) {
        struct rrec *x = na_workq_take(r->workq, 100);
        if (x) {
            na_classification_cleanup(&x->base);
            na_decision_cleanup(&x->d);
            rrec_free(x);
        }
    }
}

static void serve(struct replay *r, int timeout_ms);

/* A record in read order (or the merge's order): into the stages. Takes
 * @p rkm (the record as read) or @p copy (as the merge kept it). */
static void handle_record(struct replay *r, rd_kafka_message_t *rkm, struct mrec *copy) {
    int32_t partition = rkm ? rkm->partition : copy->partition;
    int64_t offset = rkm ? rkm->offset : copy->offset;
    struct na_replay_part *p = find_part(r->range, partition);
    struct rrec *x;

    if (!p || p->done || offset < p->next) {
        goto drop;
    }
    if (offset >= p->end) {
        p->next = p->end;
        part_finish(r, p);
        goto drop;
    }
    p->next = offset + 1;
    if (p->next >= p->end) {
        part_finish(r, p); /* its last record: read no further */
    }
    r->stats->read++;
    na_metric_add(r->records, 1);
    if (!(x = calloc(1, sizeof(*x))) ||
        !(x->entry = na_tracker_add(r->tracker, partition, offset))) {
        free(x);
        r->fatal = true;
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        goto drop;
    }
    x->rkm = rkm;
    x->copy = copy;
    x->payload = rkm ? rkm->payload : copy->payload;
    x->len = rkm ? rkm->len : copy->len;
    x->partition = partition;
    x->offset = offset;
    x->p = p;
    int64_t ts = rkm ? rd_kafka_message_timestamp(rkm, NULL) : copy->ts;
    x->filtered =
        (r->range->ts_from_ms != NA_REPLAY_TS_NONE && ts < r->range->ts_from_ms) ||
        (r->range->ts_to_ms != NA_REPLAY_TS_NONE && ts >= r->range->ts_to_ms);
    if (r->workq && na_workq_submit(r->workq, x)) {
        return; /* collect() finishes it */
    }
    /* No workers: every stage here, after the records read before it. */
    while (r->workq && na_workq_pending(r->workq)) {
        serve(r, 100);
    }
    work(x, r);
    finish(r, x);
    return;
drop:
    if (rkm) {
        rd_kafka_message_destroy(rkm);
    }
    free(copy);
}

/* The end of a partition's range reached (the log ends there or before):
 * nothing more will come within the range. */
static void handle_end(struct replay *r, int32_t partition, int64_t offset) {
    struct na_replay_part *p = find_part(r->range, partition);
    if (p && !p->done && offset >= p->end) {
        p->next = p->end;
        part_finish(r, p);
    }
}

/* Take one record or event from the consumer (it owns @p rkm from here on). */
static void handle_message(struct replay *r, rd_kafka_message_t *rkm) {
    if (!rkm->err) {
        handle_record(r, rkm, NULL);
        return;
    }
    if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* The end of the log before our end: records there were compacted
         * away or deleted. */
        handle_end(r, rkm->partition, rkm->offset);
    } else {
        na_log(NA_LOG_WARN, "replay", "consume_error", "err=%s",
               na_log_q(rd_kafka_message_errstr(rkm)));
        if (na_kafka_classify(rkm->err, 0) == NA_OUTCOME_FATAL) {
            r->fatal = true;
            snprintf(r->errstr, sizeof(r->errstr), "%s", rd_kafka_message_errstr(rkm));
        }
    }
    rd_kafka_message_destroy(rkm);
}

/* Bytes the merge may hold (copies of records), shared by the partitions,
 * each at least NA_REPLAY_MERGE_MIN_SHARE: one that holds its share pauses
 * its fetches until it is down to half. A pause drops what librdkafka
 * prefetched for it: 100,000 articles in 6 partitions on one core took 5.8 s
 * with 4 MiB, 4.1 s with 8 MiB, 3.8 s with 16 MiB (3.4 s unmerged); peak
 * RSS on the pipeline bench's topic 33, 35 and 42 MB. */
#define NA_REPLAY_MERGE_BYTES (8u << 20)
#define NA_REPLAY_MERGE_MIN_SHARE (128u << 10)

static void pause_part(struct replay *r, const struct na_replay_part *p, bool pause) {
    fetch_pause(r, p->partition, pause);
    if (!pause) {
        /* or the fetcher looks at it again only on its next tick, up to a
         * second later */
        na_kafka_wake(r->opts->rk);
    }
    r->mstate[p - r->range->parts].paused = pause;
}

/* A record (or event) from the consumer: into the merge, which hands it on
 * in its turn (release()); errors and what is out of range go on at once. */
static void merge_take(struct replay *r, rd_kafka_message_t *rkm) {
    struct na_replay_part *p = find_part(r->range, rkm->partition);
    if (!r->merge || !p) {
        handle_message(r, rkm);
        return;
    }
    size_t i = (size_t)(p - r->range->parts);
    struct mstate *ms = &r->mstate[i];
    bool end = false;
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF || rkm->offset < p->end) {
            handle_message(r, rkm); /* logged there; nothing to order */
            return;
        }
        end = true; /* the log ends at or before our end: after its records */
    } else if (rkm->offset >= p->end) {
        end = true;
    }
    if (na_merge_closed(r->merge, i) || (!end && rkm->offset < ms->next)) {
        rd_kafka_message_destroy(rkm); /* had it already, or all it needs */
        return;
    }
    size_t len = end ? 0 : rkm->len;
    struct mrec *m = malloc(sizeof(*m) + len);
    if (!m) {
        r->fatal = true;
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        rd_kafka_message_destroy(rkm);
        return;
    }
    *m = (struct mrec){rkm->partition, end, rkm->offset,
                       end ? INT64_MIN : rd_kafka_message_timestamp(rkm, NULL), len};
    if (len) {
        memcpy(m->payload, rkm->payload, len);
    }
    if (!end) {
        ms->next = rkm->offset + 1;
    }
    rd_kafka_message_destroy(rkm); /* and with it, in time, its fetch */
    if (!na_merge_push(r->merge, i, m->ts, sizeof(*m) + len, m)) {
        r->fatal = true;
        snprintf(r->errstr, sizeof(r->errstr), "out of memory");
        free(m);
        return;
    }
    if (end || ms->next >= p->end) {
        /* Its last record is in: fetches past it would wait on the broker
         * (fetch.wait.max.ms) and hold the other partitions' fetches back. */
        na_merge_close(r->merge, i);
        if (!ms->paused) {
            pause_part(r, p, true);
        }
    } else if (!ms->paused && na_merge_bytes(r->merge, i) >= r->merge_cap) {
        pause_part(r, p, true);
    }
}

/* Hand on what the merge allows while the workers have room. */
static void release(struct replay *r) {
    size_t i;
    struct mrec *m;
    /* Held while a ledger record waits to be written again (backlogged()). */
    while (r->merge && !r->fatal && !r->retries_cnt &&
           (!r->workq || na_workq_has_room(r->workq)) &&
           (m = na_merge_pop(r->merge, &i))) {
        struct na_replay_part *p = &r->range->parts[i];
        if (m->end) {
            handle_end(r, m->partition, m->offset);
            free(m);
        } else {
            handle_record(r, NULL, m);
        }
        if (r->mstate[i].paused && !na_merge_closed(r->merge, i) &&
            na_merge_bytes(r->merge, i) < r->merge_cap / 2) {
            pause_part(r, p, false);
        }
    }
}

/* Stopped early: what the merge holds was not handed on (it is read again
 * next time, from the resume position). */
static void merge_discard(struct replay *r) {
    size_t i;
    struct mrec *m;
    if (!r->merge) {
        return;
    }
    for (i = 0; i < r->range->cnt; i++) {
        na_merge_close(r->merge, i);
    }
    while ((m = na_merge_pop(r->merge, &i))) {
        free(m);
    }
}

static void update_resume(struct replay *r) {
    for (size_t i = 0; i < r->range->cnt; i++) {
        struct na_replay_part *p = &r->range->parts[i];
        int64_t off;
        if (na_tracker_committable(r->tracker, p->partition, &off)) {
            p->resume = off;
        }
    }
    release_lines(r);
}

static bool all_done(const struct na_replay_range *range) {
    for (size_t i = 0; i < range->cnt; i++) {
        if (!range->parts[i].done) {
            return false;
        }
    }
    return true;
}

static size_t work_pending(struct replay *r) {
    return (r->workq ? na_workq_pending(r->workq) : 0) +
           (r->deliver ? na_deliver_pending(r->deliver) : 0) +
           (r->ledger ? na_ledger_outstanding(r->ledger) : 0) + r->retries_cnt +
           r->awaiting + (r->out_rk ? (size_t)rd_kafka_outq_len(r->out_rk) : 0);
}

static void serve(struct replay *r, int timeout_ms) {
    if (r->workq && na_workq_pending(r->workq) && collect(r, timeout_ms)) {
        timeout_ms = 0;
    }
    if (r->deliver) {
        na_deliver_run(r->deliver, timeout_ms, on_delivered, r);
        timeout_ms = 0;
    }
    if (r->ledger) {
        na_ledger_poll(r->ledger, 0);
        run_ledger_retries(r, false);
        check_handovers(r);
    }
    if (r->out_rk) {
        rd_kafka_poll(r->out_rk, timeout_ms);
    }
}

static void progress(struct replay *r, int64_t t0, int64_t *last, bool final) {
    const struct na_replay_opts *o = r->opts;
    int64_t now = na_mono_ms();
    int64_t every = o->progress == 1 ? 200 : o->progress_interval_ms;
    char text[256];
    if (!o->progress || (!final && now - *last < every)) {
        return;
    }
    *last = now;
    uint64_t done = na_replay_range_done(r->range);
    double secs = (double)(now - t0) / 1000.0;
    na_replay_progress_format(text, sizeof(text), done, na_replay_range_total(r->range),
                              secs > 0.2 ? (double)done / secs : -1, o->progress == 1);
    if (o->progress == 1) {
        fprintf(stderr, "\r%s\x1b[K%s", text, final ? "\n" : "");
        fflush(stderr);
    } else {
        na_log(NA_LOG_INFO, "replay", "progress", "%s", text);
    }
}

/* Runs inside na_ledger_open() for each ledger record: re-open its story,
 * as the live consumer does at start. */
static void seed_story(const char *alert_id, const json_t *value, void *ctx) {
    struct replay *r = ctx;
    const char *sid = NULL;
    (void)alert_id;
    /* Only what the ledger held at start: stories opened by the live
     * consumers meanwhile would make the run's lines depend on timing. */
    if (r->ledger_following) {
        return;
    }
    if (na_stories_seed_record(r->stories, value, &sid)) {
        na_log(NA_LOG_WARN, "replay", "story_seed_failed", "story=%s", sid ? sid : "?");
    }
}

static na_err_t open_outputs(struct replay *r, char *errstr, size_t errstr_size) {
    const struct na_replay_opts *o = r->opts;
    const struct na_consumer_conf *conf = o->conf;
    bool want_ledger = conf->routes.cnt && (o->post_routes || o->dry_run);

    if (o->post_routes) {
        struct na_deliver_opts dopts;
        na_consumer_deliver_opts(conf, &dopts);
        if (!(r->deliver = na_deliver_new(&dopts))) {
            return NA_ERR_NOMEM;
        }
    }
    struct na_stories_opts sopts;
    na_consumer_story_opts(conf, &sopts);
    if (conf->stories && !(r->stories = na_stories_new_opts(&sopts))) {
        return NA_ERR_NOMEM;
    }
    if (want_ledger) {
        struct na_ledger_opts lopts = {
            .brokers = conf->brokers,
            .props = &conf->props,
            .topic = conf->ledger_topic,
            .load_timeout_ms = (int)conf->ledger_timeout_ms,
            .create_topic = o->post_routes,
            .confirm_cb = on_ledger_confirm,
            .ctx = r,
            .load_cb = r->stories ? seed_story : NULL,
            .load_ctx = r,
            /* What the live members deliver meanwhile, and how a hand-over
             * they have in flight ends (check_handovers()). */
            .follow = o->post_routes,
        };
        na_err_t err = na_ledger_open(&lopts, &r->ledger, errstr, errstr_size);
        if (err) {
            return err;
        }
        r->ledger_following = true;
        na_log(NA_LOG_INFO, "replay", "ledger_loaded", "alerts=%zu",
               na_ledger_count(r->ledger));
    }
    if (o->output_topic) {
        rd_kafka_conf_t *kconf =
            na_kafka_conf_new(conf->brokers, &conf->props, errstr, errstr_size);
        if (!kconf ||
            na_kafka_conf_set(kconf, "client.id", "newsalert-replay-output", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "linger.ms", "50", errstr, errstr_size)) {
            if (kconf) {
                rd_kafka_conf_destroy(kconf);
            }
            return NA_ERR_CONFIG;
        }
        rd_kafka_conf_set_dr_msg_cb(kconf, on_output_delivery);
        rd_kafka_conf_set_opaque(kconf, r);
        if (!(r->out_rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size))) {
            rd_kafka_conf_destroy(kconf);
            return NA_ERR_CONFIG;
        }
    }
    return NA_OK;
}

na_err_t na_replay_run(const struct na_replay_opts *opts, struct na_replay_range *range,
                       struct na_replay_stats *stats, char *errstr, size_t errstr_size) {
    struct replay r;
    rd_kafka_topic_partition_list_t *assign = NULL;
    na_err_t err = NA_OK;
    int64_t t0 = na_mono_ms();
    int64_t last = t0;

    memset(&r, 0, sizeof(r));
    memset(stats, 0, sizeof(*stats));
    r.opts = opts;
    r.range = range;
    r.stats = stats;
    r.records = na_metrics_get(NA_METRIC_COUNTER, "newsalert_replay_records_total",
                               "Records read by replays.", NULL);
    if (!(r.tracker = na_tracker_new()) ||
        !(r.held = calloc(range->cnt ? range->cnt : 1, sizeof(*r.held)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if ((err = open_outputs(&r, errstr, errstr_size))) {
        goto out;
    }
    int workers = na_workq_threads(opts->conf->workers);
    if (workers && !(r.workq = na_workq_new(workers, NA_REPLAY_WORK_WINDOW, work, &r))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* Several partitions: their records go on in one order, whatever the
     * interleaving of the fetches (merge.h). */
    if (range->cnt > 1) {
        if (!(r.merge = na_merge_new(range->cnt)) ||
            !(r.mstate = calloc(range->cnt, sizeof(*r.mstate)))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        r.merge_cap = NA_REPLAY_MERGE_BYTES / range->cnt;
        if (r.merge_cap < NA_REPLAY_MERGE_MIN_SHARE) {
            r.merge_cap = NA_REPLAY_MERGE_MIN_SHARE;
        }
        for (size_t i = 0; i < range->cnt; i++) {
            r.mstate[i].next = range->parts[i].next;
            if (range->parts[i].done) {
                na_merge_close(r.merge, i);
            }
        }
    }
    assign = rd_kafka_topic_partition_list_new((int)range->cnt);
    for (size_t i = 0; i < range->cnt; i++) {
        if (!range->parts[i].done) {
            rd_kafka_topic_partition_list_add(assign, opts->conf->topic,
                                              range->parts[i].partition)
                ->offset = range->parts[i].next;
        }
    }
    na_log(NA_LOG_INFO, "replay", "started", "topic=%s partitions=%d records=%" PRIu64,
           na_log_q(opts->conf->topic), assign->cnt, na_replay_range_total(range));
    if (assign->cnt) {
        rd_kafka_resp_err_t kerr = rd_kafka_assign(opts->rk, assign);
        if (kerr) {
            snprintf(errstr, errstr_size, "assign: %s", rd_kafka_err2str(kerr));
            err = NA_ERR_KAFKA;
            goto out;
        }
    }
    struct na_kafka_refill refill;
    na_kafka_refill_init(&refill, opts->rk);
    while (*opts->running && !r.fatal && !r.out_failed && !r.ledger_failed &&
           (!all_done(range) || (r.workq && na_workq_pending(r.workq)))) {
        bool busy = work_pending(&r) > 0;
        /* Read on while the workers have room (bounded memory). */
        rd_kafka_message_t *rkm = !r.workq || na_workq_has_room(r.workq)
                                      ? rd_kafka_consumer_poll(opts->rk, busy ? 0 : 100)
                                      : NULL;
        na_kafka_refill_note(&refill, rkm);
        if (rkm) {
            merge_take(&r, rkm);
        }
        release(&r);
        serve(&r, rkm ? 0 : (busy ? 10 : 0));
        release(&r);
        update_resume(&r);
        progress(&r, t0, &last, false);
        /* Back-pressure (the workers read ahead by their window at most). */
        while (*opts->running && !r.ledger_failed && backlogged(&r)) {
            serve(&r, 50);
            release(&r);
            update_resume(&r);
        }
    }
    stats->refills = refill.sent;
    na_kafka_refill_cleanup(&refill);
    /* Stopped early: what the workers hold raised nothing yet; it stays
     * unfinished (below the resume position) and is read again. */
    bool dropped = false;
    if (!*opts->running || r.fatal || r.out_failed || r.ledger_failed) {
        dropped = (r.workq && na_workq_pending(r.workq)) ||
                  (r.merge && na_merge_count(r.merge));
        discard(&r);
        merge_discard(&r);
    }
    stats->interrupted =
        (!all_done(range) || dropped || r.ledger_failed) && !r.fatal && !r.out_failed;
    /* Finish what was started: deliveries (up to drain_timeout when
     * interrupted), ledger records, produced lines. */
    int64_t deadline = na_mono_ms() + (stats->interrupted ? opts->conf->drain_timeout_ms
                                                          : INT64_MAX / 4);
    bool stopped = !*opts->running;
    while (work_pending(&r) && na_mono_ms() < deadline) {
        if (!stopped && !*opts->running) {
            /* Ctrl-C once every record was read: what is in flight gets
             * drain_timeout from now, as when reading is stopped. */
            stopped = true;
            deadline = na_mono_ms() + opts->conf->drain_timeout_ms;
        }
        serve(&r, 50);
        update_resume(&r);
        progress(&r, t0, &last, false);
    }
    bool timed_out = work_pending(&r) > 0;
    if (timed_out && !r.fatal && !r.out_failed) {
        stats->interrupted = true; /* the resume position is below the end */
    }
    /* Records still waiting to be written again are given up on (counted
     * failed, their articles unfinished), as are those the broker refuses
     * from now on, while the ledger flushes. */
    r.closing = true;
    run_ledger_retries(&r, true);
    if (r.ledger_failed && !r.fatal && !r.out_failed) {
        stats->interrupted = true; /* the resume position is below the end */
    }
    if (r.out_rk) {
        rd_kafka_flush(r.out_rk, 10000);
    }
    if (assign->cnt) {
        rd_kafka_assign(opts->rk, NULL);
    }
    update_resume(&r);
    progress(&r, t0, &last, true);
    /* Articles left unfinished by a ledger record given up on were logged
     * (ledger_gave_up): the drain itself did not time out. */
    if (na_tracker_unfinished(r.tracker) && (timed_out || !r.ledger_failed)) {
        na_log(NA_LOG_WARN, "replay", "drain_timeout", "unfinished=%zu",
               na_tracker_unfinished(r.tracker));
    }
    if (r.fatal || r.out_failed) {
        snprintf(errstr, errstr_size, "%s", r.errstr);
        err = r.fatal ? NA_ERR_KAFKA : NA_ERR_IO;
    }
    na_log(NA_LOG_INFO, "replay", "summary",
           "read=%" PRIu64 " filtered=%" PRIu64 " articles=%" PRIu64 " poison=%" PRIu64
           " alerts=%" PRIu64 " already_sent=%" PRIu64 " linked=%" PRIu64 " sent=%" PRIu64
           " failed=%" PRIu64 " output=%" PRIu64 " refills=%" PRIu64
           " interrupted=%d seconds=%.2f",
           stats->read, stats->filtered, stats->articles, stats->poison, stats->alerts,
           stats->already_sent, stats->linked, stats->sent, stats->failed,
           stats->output_lines, stats->refills, stats->interrupted,
           (double)(na_mono_ms() - t0) / 1000.0);
out:
    if (assign) {
        rd_kafka_topic_partition_list_destroy(assign);
    }
    discard(&r);
    na_workq_destroy(r.workq);
    merge_discard(&r);
    na_merge_destroy(r.merge);
    free(r.mstate);
    na_deliver_destroy(r.deliver); /* abandons jobs past the drain deadline */
    r.closing = true;              /* a record refused in the flush is given up */
    na_ledger_destroy(r.ledger);
    na_stories_destroy(r.stories);
    while (r.jobs) {
        job_free(r.jobs);
    }
    if (r.out_rk) {
        rd_kafka_flush(r.out_rk, 5000);
        rd_kafka_destroy(r.out_rk);
    }
    na_tracker_destroy(r.tracker);
    held_cleanup(&r);
    strset_cleanup(&r.seen);
    return err;
}
