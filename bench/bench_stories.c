/*
 * bench_stories: story assignment (na_stories_assign_read()) per CPU second on
 * the calling thread, with about 10,000 stories open.
 *
 *   bench_stories --case in-order|shuffled|all-alike [--articles N]
 *                 [--warmup N]
 *
 * The corpus is generated, deterministic, and made on the fly (only the
 * assignment is timed, by the thread's CPU clock). Vocabulary: 30,000
 * made-up words drawn Zipf-like for the background (the 100 most frequent
 * act as function words). An event has 4 names (capitalised, two of them
 * two-word names), 2 places, 3 figures ("84%", "$11.2 billion", "41,000"),
 * a date ("March 14") and 12 topic words of middle frequency; each report
 * draws a title of 9 words (4 of the event's) and a body of about 1,200
 * bytes, sentences of 12 to 20 words of which 3 are the event's, a
 * different subset per report. 40 events an hour have 3 to 5 reports
 * within 36 hours, and 55 single reports an hour stand alone: with the
 * default window (3 days) and a reorder allowance of 2 days, about 10,000
 * stories are open once --warmup articles (default 30,000) were assigned;
 * then --articles (default 50,000) are timed.
 *
 * Cases:
 *   in-order   published order;
 *   shuffled   each day's articles in a random order (as partitions read in
 *              offset order interleave: within the reorder allowance);
 *   all-alike  every article the same event's words, 2 days of articles:
 *              one story of all of them, the largest feature lists and
 *              postings there are.
 * Each article is read (na_story_read(), what the pipeline's worker
 * threads do) and then assigned (na_stories_assign_read(), on the
 * engine's thread), each timed. Prints JSON lines for the case:
 * articles_per_s (both, per CPU second of the thread), assign_per_s (the
 * assignment alone: what bounds the consumer's thread when workers read),
 * read_per_s (the reading alone), articles_per_wall_s, open_stories (at the end),
 * stories_per_event (stories / events, 1.0 = every event one story; not for all-alike),
 * features (the dictionary), peak_rss_kb, bcubed_precision and
 * bcubed_recall (of the stories against the generated events, over every
 * article, warm-up included: a faster engine that decides worse shows
 * here; not for all-alike), decisions_digest (48 bits of an FNV-1a hash
 * over the story id of every article, warm-up included, in order: the
 * same figure means the same decisions).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "newsalert/article.h"
#include "newsalert/util.h"
#include "story.h"

#define VOCAB 30000
#define COMMON 100
#define EVENT_WORDS 12
#define EVENTS_PER_HOUR 40
#define SINGLES_PER_HOUR 55
#define BODY_BYTES 1200
/* Articles made, read and assigned at a time. */
#define BATCH 256

static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A small generator per article, seeded from (event, report). */
struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r) {
    return mix(r->s++);
}

static double unit(struct rng *r) {
    return (double)(next(r) >> 11) / 9007199254740992.0;
}

static char vocab[VOCAB][12];
static double zipf_cdf[VOCAB];

static void make_vocab(void) {
    static const char *const syl[] = {"ka",  "to", "ri", "ven", "lo", "mar", "te", "sun",
                                      "del", "or", "pa", "qui", "ne", "bra", "os", "lin"};
    struct rng r = {42};
    for (size_t i = 0; i < VOCAB; i++) {
        size_t n = 2 + (next(&r) % 3), len = 0;
        for (size_t k = 0; k < n; k++) {
            const char *x = syl[next(&r) % 16];
            memcpy(vocab[i] + len, x, strlen(x));
            len += strlen(x);
        }
        vocab[i][len++] = (char)('a' + (i % 26)); /* distinct enough */
        vocab[i][len] = '\0';
    }
    double sum = 0;
    for (size_t i = 0; i < VOCAB; i++) {
        sum += 1.0 / (double)(i + 1);
        zipf_cdf[i] = sum;
    }
    for (size_t i = 0; i < VOCAB; i++) {
        zipf_cdf[i] /= sum;
    }
}

static size_t zipf(struct rng *r) {
    double u = unit(r);
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* What an event is about. */
struct event {
    char names[4][32];
    char places[2][16];
    char figures[3][24];
    char date[16];
    size_t words[EVENT_WORDS];
};

static void make_event(uint64_t id, struct event *e, int64_t t) {
    static const char *const months[] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};
    struct rng r = {mix(id * 7919 + 1)};
    for (size_t i = 0; i < 4; i++) {
        const char *a = vocab[200 + next(&r) % (VOCAB - 200)];
        const char *b = vocab[200 + next(&r) % (VOCAB - 200)];
        if (i < 2) {
            snprintf(e->names[i], sizeof(e->names[i]), "%c%s %c%s", a[0] - 32, a + 1,
                     b[0] - 32, b + 1);
        } else {
            snprintf(e->names[i], sizeof(e->names[i]), "%c%s", a[0] - 32, a + 1);
        }
    }
    for (size_t i = 0; i < 2; i++) {
        const char *a = vocab[200 + next(&r) % (VOCAB - 200)];
        snprintf(e->places[i], sizeof(e->places[i]), "%c%s", a[0] - 32, a + 1);
    }
    snprintf(e->figures[0], sizeof(e->figures[0]), "%u%%", (unsigned)(next(&r) % 300));
    snprintf(e->figures[1], sizeof(e->figures[1]), "$%u.%u billion",
             (unsigned)(1 + next(&r) % 90), (unsigned)(next(&r) % 10));
    snprintf(e->figures[2], sizeof(e->figures[2]), "%u,%03u",
             (unsigned)(1 + next(&r) % 90), (unsigned)(next(&r) % 1000));
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(e->date, sizeof(e->date), "%s %d", months[tm.tm_mon], tm.tm_mday);
    for (size_t i = 0; i < EVENT_WORDS; i++) {
        e->words[i] = 500 + next(&r) % (VOCAB - 500);
    }
}

/* One of the event's words, as text. */
static const char *event_word(const struct event *e, struct rng *r) {
    uint64_t k = next(r) % (EVENT_WORDS + 4 + 2 + 3 + 1);
    if (k < EVENT_WORDS) {
        return vocab[e->words[k]];
    }
    k -= EVENT_WORDS;
    if (k < 4) {
        return e->names[k];
    }
    k -= 4;
    if (k < 2) {
        return e->places[k];
    }
    k -= 2;
    return k < 3 ? e->figures[k] : e->date;
}

static void buf_clear(struct na_buf *b) {
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

/* Append @p w, capitalised when @p cap. */
static void put_word(struct na_buf *b, const char *w, bool cap, bool space) {
    char c = cap && w[0] >= 'a' && w[0] <= 'z' ? (char)(w[0] - 32) : w[0];
    na_buf_printf(b, "%s%c%s", space ? " " : "", c, w + 1);
}

static void make_report(const struct event *e, uint64_t event_id, unsigned report,
                        struct na_buf *title, struct na_buf *body) {
    struct rng r = {mix(event_id * 1000003 + report * 31 + 7)};
    buf_clear(title);
    buf_clear(body);
    for (int i = 0; i < 9; i++) {
        const char *w = i % 2 == 1 ? event_word(e, &r) : vocab[zipf(&r)];
        put_word(title, w, i == 0, i > 0);
    }
    while (body->len < BODY_BYTES) {
        int words = 12 + (int)(next(&r) % 9);
        for (int i = 0; i < words; i++) {
            const char *w = i % 5 == 2 ? event_word(e, &r) : vocab[zipf(&r)];
            put_word(body, w, i == 0, body->len > 0);
        }
        na_buf_puts(body, ".");
    }
}

/* A report to make: its time, its event, which report of the event. */
struct item {
    int64_t t;
    uint64_t event;
    unsigned report;
};

static int item_cmp(const void *a, const void *b) {
    const struct item *x = a, *y = b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    return x->event < y->event ? -1 : x->event > y->event;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An article's story (the first 64 bits of its id) and event. */
struct label {
    uint64_t story;
    uint64_t event;
};

static int label_cmp(const void *a, const void *b) {
    const struct label *x = a, *y = b;
    if (x->story != y->story) {
        return x->story < y->story ? -1 : 1;
    }
    return x->event < y->event ? -1 : x->event > y->event;
}

/* B-cubed precision and recall of the stories in @p l[0..n) (sorted here)
 * against their events (ids below @p events). false: no memory. */
static bool bcubed(struct label *l, size_t n, uint64_t events, double *prec,
                   double *rec) {
    size_t *class_size = calloc(events ? events : 1, sizeof(*class_size));
    if (!class_size) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        class_size[l[i].event]++;
    }
    qsort(l, n, sizeof(*l), label_cmp);
    double p = 0, r = 0;
    for (size_t b = 0; b < n;) {
        size_t e = b;
        while (e < n && l[e].story == l[b].story) {
            e++;
        }
        for (size_t j = b; j < e;) { /* runs of one event in the story */
            size_t k = j;
            while (k < e && l[k].event == l[j].event) {
                k++;
            }
            double both = (double)(k - j);
            p += both * both / (double)(e - b);
            r += both * both / (double)class_size[l[j].event];
            j = k;
        }
        b = e;
    }
    free(class_size);
    *prec = n ? p / (double)n : 0;
    *rec = n ? r / (double)n : 0;
    return true;
}

/* A JSON line; @p places: decimals of a value that is not whole. */
static void emit_places(const char *c, const char *metric, double value, int places,
                        const char *unit_s) {
    printf("{\"bench\":\"stories\",\"case\":\"%s\",\"metric\":\"%s\",\"value\":%.*f,"
           "\"unit\":\"%s\"}\n",
           c, metric, value == floor(value) ? 0 : places, value, unit_s);
}

static void emit(const char *c, const char *metric, double value, const char *unit_s) {
    emit_places(c, metric, value, 3, unit_s);
}

int main(int argc, char **argv) {
    const char *which = "in-order";
    size_t measured = 50000, warmup = 30000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--case") && i + 1 < argc) {
            which = argv[++i];
        } else if (!strcmp(argv[i], "--articles") && i + 1 < argc) {
            measured = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
            warmup = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_stories --case in-order|shuffled|all-alike "
                            "[--articles N] [--warmup N]\n");
            return 2;
        }
    }
    bool alike = !strcmp(which, "all-alike");
    bool shuffled = !strcmp(which, "shuffled");
    if (!alike && !shuffled && strcmp(which, "in-order")) {
        fprintf(stderr, "bench_stories: unknown case %s\n", which);
        return 2;
    }
    make_vocab();
    /* The reports, in time order. */
    size_t total = warmup + measured;
    size_t cap = total + 1024, n = 0;
    struct item *items = calloc(cap, sizeof(*items));
    struct label *labels = calloc(cap, sizeof(*labels));
    const int64_t t0 = 1735689600; /* 2025-01-01 */
    uint64_t events = 0;
    if (!items || !labels) {
        return 1;
    }
    if (alike) {
        for (n = 0; n < total; n++) {
            items[n] =
                (struct item){t0 + (int64_t)(n * 2 * 86400 / total), 0, (unsigned)n};
        }
        events = 1;
    } else {
        /* Event starts and singles by the hour, until there are enough. */
        struct rng r = {99};
        for (int64_t hour = 0; n < total; hour++) {
            for (int k = 0; k < EVENTS_PER_HOUR + SINGLES_PER_HOUR && n < cap; k++) {
                uint64_t ev = events++;
                int64_t start = t0 + hour * 3600 + (int64_t)(next(&r) % 3600);
                unsigned reports = k < EVENTS_PER_HOUR ? 3 + (unsigned)(next(&r) % 3) : 1;
                for (unsigned j = 0; j < reports && n < cap; j++) {
                    int64_t dt = j ? (int64_t)(next(&r) % (36 * 3600)) : 0;
                    items[n++] = (struct item){start + dt, ev, j};
                }
            }
        }
        qsort(items, n, sizeof(*items), item_cmp);
        n = total;
    }
    if (shuffled) {
        /* Within each day of articles. */
        struct rng r = {7};
        size_t b = 0;
        while (b < n) {
            size_t e = b;
            while (e < n && items[e].t < items[b].t + 86400) {
                e++;
            }
            for (size_t k = e - b; k > 1; k--) {
                size_t i = b + k - 1;
                size_t j = b + (size_t)(next(&r) % (uint64_t)k);
                struct item tmp = items[i];
                items[i] = items[j];
                items[j] = tmp;
            }
            b = e;
        }
    }
    /* The default window; a reorder allowance of two days (the daemon's
     * default is 7 days), so that about 10,000 stories are open (10,053
     * after the warm-up in order, 9,714 at the end). */
    const struct na_stories_opts so = {.reorder_ms = 48 * 3600 * 1000LL,
                                       .reorder_set = true};
    na_stories_t *st = na_stories_new_opts(&so);
    static struct na_buf titles[BATCH], bodies[BATCH];
    static struct na_article arts[BATCH];
    static na_story_read_t *rd[BATCH];
    static char story[BATCH][NA_SHA256_HEX_LEN + 1];
    static bool is_new[BATCH];
    struct event e;
    uint64_t cur_event = UINT64_MAX;
    size_t opened = 0, opened_events = 0;
    uint64_t digest = 14695981039346656037ull; /* FNV-1a over the story ids */
    double cpu = 0, read_cpu = 0, assign_cpu = 0, wall = 0;
    for (size_t k = 0; k < BATCH; k++) {
        na_buf_init(&titles[k]);
        na_buf_init(&bodies[k]);
        na_article_init(&arts[k]);
        if (!(rd[k] = na_story_read_new())) {
            return 1;
        }
    }
    if (!st) {
        return 1;
    }
    /* In batches, each made first (not timed), then read (timed), then
     * assigned (timed): three clock readings a batch, not a batch's worth
     * of system calls in the timed CPU. */
    for (size_t i0 = 0; i0 < n;) {
        size_t i1 = i0 + BATCH < n ? i0 + BATCH : n;
        if (i0 < warmup && i1 > warmup) {
            i1 = warmup; /* a batch is all warm-up or all timed */
        }
        bool timed = i0 >= warmup;
        for (size_t i = i0; i < i1; i++) {
            const struct item *it = &items[i];
            struct na_article *a = &arts[i - i0];
            if (it->event != cur_event) {
                make_event(it->event, &e, it->t);
                cur_event = it->event;
            }
            /* all-alike: the reports of one event, cycled */
            make_report(&e, it->event, alike ? it->report % 64 : it->report,
                        &titles[i - i0], &bodies[i - i0]);
            snprintf(a->id, sizeof(a->id), "%016llx%04x", (unsigned long long)it->event,
                     it->report);
            a->title = titles[i - i0].data;
            a->content = bodies[i - i0].data;
            a->published_at = it->t;
        }
        double c0 = cpu_now(), w0 = wall_now();
        for (size_t i = i0; i < i1; i++) {
            if (na_story_read(rd[i - i0], &arts[i - i0])) {
                fprintf(stderr, "bench_stories: out of memory\n");
                return 1;
            }
        }
        double c1 = cpu_now();
        for (size_t i = i0; i < i1; i++) {
            if (na_stories_assign_read(st, &arts[i - i0], rd[i - i0], story[i - i0],
                                       &is_new[i - i0])) {
                fprintf(stderr, "bench_stories: out of memory\n");
                return 1;
            }
        }
        double c2 = cpu_now(), w1 = wall_now();
        if (timed) {
            cpu += c2 - c0;
            read_cpu += c1 - c0;
            assign_cpu += c2 - c1;
            wall += w1 - w0;
        }
        for (size_t i = i0; i < i1; i++) {
            const char *sid = story[i - i0];
            for (size_t k = 0; k < NA_SHA256_HEX_LEN; k++) {
                digest = (digest ^ (unsigned char)sid[k]) * 1099511628211ull;
            }
            char head[17]; /* the story id's first 64 bits */
            memcpy(head, sid, 16);
            head[16] = '\0';
            labels[i] = (struct label){strtoull(head, NULL, 16), items[i].event};
            if (timed) {
                opened += is_new[i - i0];
                opened_events += items[i].report == 0; /* an event starts */
            }
        }
        i0 = i1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char name[32];
    snprintf(name, sizeof(name), "%s", which);
    emit(name, "articles_per_s", round((double)measured / cpu), "1/s");
    emit(name, "articles_per_wall_s", round((double)measured / wall), "1/s");
    emit(name, "assign_per_s", round((double)measured / assign_cpu), "1/s");
    emit(name, "read_per_s", round((double)measured / read_cpu), "1/s");
    emit(name, "open_stories", (double)na_stories_count(st), "stories");
    if (!alike && opened_events) {
        emit(name, "stories_per_event",
             round(1000.0 * (double)opened / (double)opened_events) / 1000.0, "1");
    }
    double bp = 0, br = 0;
    if (!alike) {
        if (!bcubed(labels, n, events, &bp, &br)) {
            return 1;
        }
        emit_places(name, "bcubed_precision", round(1e4 * bp) / 1e4, 4, "1");
        emit_places(name, "bcubed_recall", round(1e4 * br) / 1e4, 4, "1");
    }
    emit(name, "features", (double)na_stories_feature_count(st), "features");
    emit(name, "peak_rss_kb", (double)ru.ru_maxrss, "KB");
    /* Which story every article (warm-up too) went to, as 48 bits: an
     * engine change that must not change decisions keeps it. */
    emit(name, "decisions_digest", (double)(digest >> 16), "fnv1a48");
    na_stories_destroy(st);
    for (size_t k = 0; k < BATCH; k++) {
        na_story_read_destroy(rd[k]);
        na_buf_cleanup(&titles[k]);
        na_buf_cleanup(&bodies[k]);
        arts[k].title = arts[k].content = NULL; /* the buffers' */
        na_article_cleanup(&arts[k]);
    }
    free(items);
    free(labels);
    return 0;
}
