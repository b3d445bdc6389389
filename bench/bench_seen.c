/*
 * bench_seen: the producer's seen-state on disk (producer/seen.h). Run by
 * bench/seen.sh.
 *
 *   bench_seen build DIR FEEDS IDS   the state of FEEDS feeds of IDS ids
 *                                    each under DIR (a fresh STATE_DIR)
 *   bench_seen run DIR [SAVES]       measure, in a process of its own
 *
 * build makes the state as the producer would (a source URL, validators,
 * ttl, a schedule; ids put 100 per fetch, so that each feed has a history
 * and a latest fetch) and saves it. run measures:
 *
 *   load      na_seen_load() of the whole folder (every feed file and the
 *             schedule), page cache warm: seconds, feeds per second, and
 *             the process's peak RSS after it;
 *   save one  one feed among them changes (ten new ids, new validators),
 *             then na_seen_save(): what the producer does within a second
 *             of a fetch with news. Mean and worst of SAVES (default 200)
 *             saves, each of another feed, in milliseconds; and the bytes
 *             of such a feed's file.
 *
 * Output: DESIGN.md's JSON lines, case "feeds=F ids=N" (N: the ids of the
 * first feed as loaded).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "newsalert/timeutil.h"
#include "seen.h"

static void id_of(unsigned feed, unsigned n, char id[80]) {
    snprintf(id, 80, "%08x%056x", feed, n);
}

/* One fetch of @p cnt new ids of @p feed_id, numbered from @p first. */
static int poll(na_seen_t *seen, const char *feed_id, unsigned feed, unsigned first,
                unsigned cnt) {
    char id[80], fp[NA_SEEN_FP_LEN + 1];
    na_seen_fetch_begin(seen, feed_id);
    for (unsigned i = first; i < first + cnt; i++) {
        id_of(feed, i, id);
        snprintf(fp, sizeof(fp), "%08x%08x", feed, i);
        if (na_seen_put(seen, feed_id, id, fp, 1)) {
            return -1;
        }
    }
    return 0;
}

static double dir_bytes(const char *dir) {
    char path[4096 + 256];
    struct stat st;
    double total = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d) {
        return 0;
    }
    while ((de = readdir(d))) {
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!stat(path, &st) && S_ISREG(st.st_mode)) {
            total += (double)st.st_size;
        }
    }
    closedir(d);
    return total;
}

static void line(const char *c, const char *metric, double value, const char *unit) {
    printf("{\"bench\":\"seen\",\"case\":\"%s\",\"metric\":\"%s\",\"value\":%.6g,"
           "\"unit\":\"%s\"}\n",
           c, metric, value, unit);
}

static int build(const char *dir, unsigned feeds, unsigned ids) {
    char errstr[512], feed_id[64], etag[64], url[256];
    na_seen_t *seen = NULL;
    const unsigned per_fetch = 100;
    if (na_seen_load(dir, &seen, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_seen: %s\n", errstr);
        return 1;
    }
    for (unsigned f = 0; f < feeds; f++) {
        bool reset;
        snprintf(feed_id, sizeof(feed_id), "feed-%05u", f);
        snprintf(url, sizeof(url), "https://news%u.example/feeds/all.xml", f);
        snprintf(etag, sizeof(etag), "\"%08x-1\"", f);
        if (na_seen_bind_url(seen, feed_id, url, &reset) ||
            na_seen_set_validators(seen, feed_id, etag,
                                   "Tue, 06 Jan 2026 08:00:00 GMT") ||
            na_seen_set_int(seen, feed_id, "ttl", 15) ||
            na_seen_set_int(seen, feed_id, "next_at", 1767686400000LL + f)) {
            fprintf(stderr, "bench_seen: no memory\n");
            return 1;
        }
        for (unsigned first = 0; first < ids; first += per_fetch) {
            unsigned n = ids - first < per_fetch ? ids - first : per_fetch;
            if (poll(seen, feed_id, f, first, n)) {
                fprintf(stderr, "bench_seen: no memory\n");
                return 1;
            }
        }
    }
    int64_t t0 = na_mono_us();
    if (na_seen_save(seen, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_seen: %s\n", errstr);
        return 1;
    }
    /* The first save of them all: a producer's first round over new feeds. */
    fprintf(stderr, "bench_seen: saving %u new feeds took %.0f ms\n", feeds,
            (double)(na_mono_us() - t0) / 1000.0);
    na_seen_destroy(seen);
    return 0;
}

static int run(const char *dir, unsigned saves) {
    char errstr[512], feed_id[64], c[64], etag[64], path[4096];
    na_seen_t *seen = NULL;

    int64_t t1 = na_mono_us();
    if (na_seen_load(dir, &seen, errstr, sizeof(errstr))) {
        fprintf(stderr, "bench_seen: %s\n", errstr);
        return 1;
    }
    double load_s = (double)(na_mono_us() - t1) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t feeds = na_seen_feeds(seen), ids = na_seen_count(seen, "feed-00000");
    if (!feeds || saves > feeds) {
        fprintf(stderr, "bench_seen: %zu feeds for %u saves\n", feeds, saves);
        return 1;
    }
    snprintf(c, sizeof(c), "feeds=%zu ids=%zu", feeds, ids);

    /* Save one changed feed, SAVES times, each another feed. */
    double total_ms = 0, worst_ms = 0;
    for (unsigned i = 0; i < saves; i++) {
        unsigned f = (unsigned)((uint64_t)i * feeds / saves);
        snprintf(feed_id, sizeof(feed_id), "feed-%05u", f);
        snprintf(etag, sizeof(etag), "\"%08x-2\"", f);
        if (poll(seen, feed_id, f, (unsigned)ids, 10) ||
            na_seen_set_validators(seen, feed_id, etag,
                                   "Tue, 06 Jan 2026 08:05:00 GMT")) {
            fprintf(stderr, "bench_seen: no memory\n");
            return 1;
        }
        int64_t t = na_mono_us();
        if (na_seen_save(seen, errstr, sizeof(errstr))) {
            fprintf(stderr, "bench_seen: %s\n", errstr);
            return 1;
        }
        double ms = (double)(na_mono_us() - t) / 1000.0;
        total_ms += ms;
        worst_ms = ms > worst_ms ? ms : worst_ms;
    }
    size_t len = 0;
    free(na_seen_feed_dump(seen, "feed-00000", &len));
    na_seen_destroy(seen);

    snprintf(path, sizeof(path), "%s/seen", dir);
    line(c, "load_s", load_s, "s");
    line(c, "load_feeds_per_s", (double)feeds / load_s, "1/s");
    line(c, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0, "MB");
    line(c, "state_mb", dir_bytes(path) / 1e6, "MB");
    line(c, "save_one_ms_mean", total_ms / saves, "ms");
    line(c, "save_one_ms_max", worst_ms, "ms");
    line(c, "feed_bytes", (double)len, "B");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "build")) {
        unsigned feeds = (unsigned)strtoul(argv[3], NULL, 10);
        unsigned ids = (unsigned)strtoul(argv[4], NULL, 10);
        if (feeds && ids) {
            return build(argv[2], feeds, ids);
        }
    } else if ((argc == 3 || argc == 4) && !strcmp(argv[1], "run")) {
        unsigned saves = argc == 4 ? (unsigned)strtoul(argv[3], NULL, 10) : 200;
        if (saves) {
            return run(argv[2], saves);
        }
    }
    fprintf(stderr, "usage: bench_seen build DIR FEEDS IDS | run DIR [SAVES]\n");
    return 2;
}
