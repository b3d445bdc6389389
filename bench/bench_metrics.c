/*
 * bench_metrics FEEDS [SECONDS]: the metrics registry at FEEDS feeds, as the
 * producer uses it. Run by bench/metrics.sh.
 *
 * Registers the series a polling producer has per feed (fetches,
 * not-modified, last success, duplicates, updates, fetch errors by reason:
 * six per feed, in the order the producer creates them: the first five feed
 * after feed, then the fetch errors of a later round, feed after feed)
 * and about forty process-wide ones ("register": how long that takes), then
 * times, each repeated for at least SECONDS (default 2) and at least 3
 * times:
 *   "status publish": what the producer's status document does every
 *       second: per feed, render its labels, look its last-success gauge up
 *       by name and labels, read it, and add the feed's JSON object;
 *   "status publish, kept handles": the same with each feed's gauge handle
 *       kept from an earlier lookup (what the producer does since the
 *       registry could drop series);
 *   "metrics render": GET /metrics, na_metrics_render() of every series.
 * Output: DESIGN.md's JSON lines, per case "<case> feeds=N": ms (for the
 * registration, per publish or per render) and, for the render, bytes.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"

static const char *const per_feed[][3] = {
    {"c", "newsalert_producer_fetches_total", NULL},
    {"c", "newsalert_producer_not_modified_total", NULL},
    {"g", "newsalert_producer_feed_last_success_seconds", NULL},
    {"c", "newsalert_producer_duplicates_total", NULL},
    {"c", "newsalert_producer_updates_total", NULL},
    {"c", "newsalert_producer_fetch_errors_total", "reason=\"http\""},
};

static void feed_labels(size_t i, const char *extra, char *buf, size_t size) {
    snprintf(buf, size, "feed=\"feed-%06zu\"%s%s", i, extra ? "," : "",
             extra ? extra : "");
}

static void register_all(size_t feeds) {
    char labels[256];
    for (int i = 0; i < 40; i++) {
        snprintf(labels, sizeof(labels), "kind=\"k%d\"", i % 8);
        na_metric_add(na_metrics_get(NA_METRIC_COUNTER,
                                     i < 8 ? "newsalert_feed_documents_total"
                                           : "newsalert_process_things_total",
                                     "Process-wide.", labels),
                      i);
    }
    /* The first round of fetches makes the first five per feed; fetch
     * errors come later (a later round in which the feeds failed). */
    size_t nk = sizeof(per_feed) / sizeof(per_feed[0]);
    for (size_t round = 0; round < 2; round++) {
        for (size_t f = 0; f < feeds; f++) {
            for (size_t k = round ? nk - 1 : 0; k < (round ? nk : nk - 1); k++) {
                feed_labels(f, per_feed[k][2], labels, sizeof(labels));
                na_metric_t *m = na_metrics_get(
                    per_feed[k][0][0] == 'g' ? NA_METRIC_GAUGE : NA_METRIC_COUNTER,
                    per_feed[k][1], "Per feed.", labels);
                na_metric_set(m, (double)(1767690000 + f));
            }
        }
    }
}

/* One status document; @p kept: per feed handle cache (NULL: look up). */
static json_t *status_doc(size_t feeds, na_metric_t **kept) {
    json_t *arr = json_array();
    char labels[256], id[32];
    for (size_t f = 0; f < feeds; f++) {
        na_metric_t *m = kept ? kept[f] : NULL;
        if (!m) {
            feed_labels(f, NULL, labels, sizeof(labels));
            m = na_metrics_get(NA_METRIC_GAUGE,
                               "newsalert_producer_feed_last_success_seconds",
                               "Per feed.", labels);
            if (kept) {
                kept[f] = m;
            }
        }
        double ok = na_metric_value(m);
        snprintf(id, sizeof(id), "feed-%06zu", f);
        json_array_append_new(arr, json_pack("{ss ss ss ss sb sI sb}", "id", id, "name",
                                             id, "url", "http://feeds.test/x.xml",
                                             "status", "ok", "critical", 0, "stale_s",
                                             (json_int_t)(1767700000 - (int64_t)ok),
                                             "stale", 0));
    }
    return json_pack("{ss so}", "daemon", "newsalert-producer", "feeds", arr);
}

static void report(const char *name, size_t feeds, const char *metric, double v,
                   const char *unit) {
    printf("{\"bench\":\"metrics\",\"case\":\"%s feeds=%zu\",\"metric\":\"%s\","
           "\"value\":%.3f,\"unit\":\"%s\"}\n",
           name, feeds, metric, v, unit);
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_metrics FEEDS [SECONDS]\n");
        return 2;
    }
    char *end = NULL;
    size_t feeds = strtoul(argv[1], &end, 10);
    double secs = argc > 2 ? strtod(argv[2], NULL) : 2.0;
    if (!end || *end || !feeds || secs <= 0) {
        fprintf(stderr, "bench_metrics: bad FEEDS or SECONDS\n");
        return 2;
    }
    int64_t t0 = na_mono_ms();
    register_all(feeds);
    report("register", feeds, "ms", (double)(na_mono_ms() - t0), "ms");

    na_metric_t **kept = calloc(feeds, sizeof(*kept));
    if (!kept) {
        return 1;
    }
    json_decref(status_doc(feeds, kept)); /* the handles, kept from then on */
    for (int c = 0; c < 3; c++) {
        int n = 0;
        size_t bytes = 0;
        int64_t start = na_mono_ms();
        do {
            if (c < 2) {
                json_decref(status_doc(feeds, c == 1 ? kept : NULL));
            } else {
                char *text = na_metrics_render();
                bytes = text ? strlen(text) : 0;
                free(text);
            }
            n++;
        } while (n < 3 || na_mono_ms() - start < (int64_t)(secs * 1000));
        double ms = (double)(na_mono_ms() - start) / n;
        static const char *const names[] = {
            "status publish", "status publish, kept handles", "metrics render"};
        report(names[c], feeds, "ms", ms, "ms");
        if (c == 2) {
            report(names[c], feeds, "bytes", (double)bytes, "B");
        }
    }
    free(kept);
    na_metrics_reset();
    return 0;
}
