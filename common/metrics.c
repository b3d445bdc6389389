/*
 * The metrics registry (metrics.h).
 *
 * Series are grouped by name into families, which keep registration order
 * (so /metrics lists each name's HELP and TYPE once, then all its series),
 * and are found through three hash tables: series by (name, labels),
 * families by name, and series by each label pair they carry (for
 * na_metrics_remove_label()). Every lookup is O(1) on average and rendering
 * is linear in the number of series.
 *
 * A removed series is marked dead rather than freed: handles callers hold
 * stay valid (updates through them go nowhere visible), it leaves /metrics,
 * and registering the same name and labels again brings it back from zero.
 * Memory is thus one series per distinct (name, labels) ever registered,
 * as before there was removal.
 */
#include "newsalert/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/fault.h"
#include "newsalert/util.h"

static const double bucket_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                       1,      2.5,     5,      10};
#define NBUCKETS (sizeof(bucket_bounds) / sizeof(bucket_bounds[0]))

struct family;

struct na_metric_s {
    struct family *fam;
    char *labels; /* NULL: none */
    uint64_t hash;
    bool dead;                /* removed: not rendered, revived by a get */
    double value;             /* counter / gauge; histogram sum */
    unsigned long long count; /* histogram */
    unsigned long long buckets[NBUCKETS];
    struct na_metric_s *next;  /* the family's series, registration order */
    struct na_metric_s *hnext; /* series table chain */
};

struct family {
    char *name;
    char *help;
    enum na_metric_type type;
    uint64_t hash;
    size_t live; /* series not dead: HELP and TYPE only when > 0 */
    struct na_metric_s *first;
    struct na_metric_s **tail;
    struct family *next;  /* registration order */
    struct family *hnext; /* family table chain */
};

/* One label pair of one series, in the pair table. */
struct pair_node {
    uint64_t hash; /* of the pair's text, e.g. feed="bbc" */
    struct na_metric_s *m;
    struct pair_node *hnext;
};

/* A chained hash table of power-of-two size; grows at load 1. */
struct table {
    void **v;
    size_t size;
    size_t cnt;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct family *families;
static struct family **families_tail = &families;
static struct table series_tab, family_tab, pair_tab;

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define HASH_SEED 0xcbf29ce484222325ULL

static uint64_t hash_str(const char *s) {
    return hash_bytes(HASH_SEED, s, strlen(s));
}

static uint64_t hash_series(const char *name, const char *labels) {
    uint64_t h = hash_str(name);
    h = hash_bytes(h, "\xff", 1); /* never in a name */
    return labels ? hash_bytes(h, labels, strlen(labels)) : h;
}

static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The chain pointer of an entry: each table holds one kind. */
typedef void **(*chain_fn)(void *entry);
typedef uint64_t (*hash_fn)(const void *entry);

static void **series_chain(void *e) {
    return (void **)&((struct na_metric_s *)e)->hnext;
}
static uint64_t series_hash(const void *e) {
    return ((const struct na_metric_s *)e)->hash;
}
static void **family_chain(void *e) {
    return (void **)&((struct family *)e)->hnext;
}
static uint64_t family_hash(const void *e) {
    return ((const struct family *)e)->hash;
}
static void **pair_chain(void *e) {
    return (void **)&((struct pair_node *)e)->hnext;
}
static uint64_t pair_hash(const void *e) {
    return ((const struct pair_node *)e)->hash;
}

/* Insert @p e (hash @p h); @returns 0, or -1 on no memory (not inserted). */
static int table_insert(struct table *t, void *e, uint64_t h, chain_fn chain,
                        hash_fn hash) {
    if (t->cnt >= t->size) {
        size_t size = t->size ? t->size * 2 : 64;
        void **v = calloc(size, sizeof(*v));
        if (!v) {
            if (!t->size) {
                return -1;
            }
        } else {
            for (size_t i = 0; i < t->size; i++) {
                void *x = t->v[i];
                while (x) {
                    void *next = *chain(x);
                    size_t b = (size_t)(hash(x) & (size - 1));
                    *chain(x) = v[b];
                    v[b] = x;
                    x = next;
                }
            }
            free(t->v);
            t->v = v;
            t->size = size;
        }
    }
    size_t b = (size_t)(h & (t->size - 1));
    *chain(e) = t->v[b];
    t->v[b] = e;
    t->cnt++;
    return 0;
}

static void *table_first(const struct table *t, uint64_t h) {
    return t->size ? t->v[h & (t->size - 1)] : NULL;
}

static struct na_metric_s *series_find(const char *name, const char *labels, uint64_t h) {
    for (struct na_metric_s *m = table_first(&series_tab, h); m; m = m->hnext) {
        if (m->hash == h && !strcmp(m->fam->name, name) && same(m->labels, labels)) {
            return m;
        }
    }
    return NULL;
}

static struct family *family_find(const char *name, uint64_t h) {
    for (struct family *f = table_first(&family_tab, h); f; f = f->hnext) {
        if (f->hash == h && !strcmp(f->name, name)) {
            return f;
        }
    }
    return NULL;
}

/* Calls @p fn for each pair of rendered labels (k="v",k2="v2"): its start
 * and length. Commas inside quoted values (escaped as \") do not split. */
static void each_pair(const char *labels, void (*fn)(const char *, size_t, void *),
                      void *ctx) {
    const char *start = labels;
    bool quoted = false;
    for (const char *p = labels;; p++) {
        if (!*p || (*p == ',' && !quoted)) {
            if (p > start) {
                fn(start, (size_t)(p - start), ctx);
            }
            if (!*p) {
                return;
            }
            start = p + 1;
        } else if (*p == '\\' && quoted && p[1]) {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        }
    }
}

struct pair_add {
    struct na_metric_s *m;
    int failed;
};

static void pair_add_one(const char *s, size_t n, void *vctx) {
    struct pair_add *ctx = vctx;
    struct pair_node *node = malloc(sizeof(*node));
    if (!node) {
        ctx->failed = 1;
        return;
    }
    node->hash = hash_bytes(HASH_SEED, s, n);
    node->m = ctx->m;
    if (table_insert(&pair_tab, node, node->hash, pair_chain, pair_hash)) {
        free(node);
        ctx->failed = 1;
    }
}

struct pair_has {
    const char *pair;
    size_t len;
    bool found;
};

static void pair_has_one(const char *s, size_t n, void *vctx) {
    struct pair_has *ctx = vctx;
    ctx->found = ctx->found || (n == ctx->len && !memcmp(s, ctx->pair, n));
}

static void series_zero(struct na_metric_s *m) {
    m->value = 0;
    m->count = 0;
    memset(m->buckets, 0, sizeof(m->buckets));
}

static void series_kill(struct na_metric_s *m) {
    if (!m->dead) {
        m->dead = true;
        m->fam->live--;
    }
}

na_metric_t *na_metrics_get(enum na_metric_type type, const char *name, const char *help,
                            const char *labels) {
    struct na_metric_s *m = NULL;
    struct family *f = NULL;
    if (labels && !*labels) {
        labels = NULL;
    }
    uint64_t h = hash_series(name, labels);
    pthread_mutex_lock(&lock);
    m = series_find(name, labels, h);
    if (m) {
        if (m->fam->type != type) {
            m = NULL;
        } else if (m->dead) {
            /* Registered again after its removal: back from zero. */
            series_zero(m);
            m->dead = false;
            m->fam->live++;
        }
        goto out;
    }
    uint64_t fh = hash_str(name);
    f = family_find(name, fh);
    if (f && f->type != type) {
        goto out;
    }
    if (!f) {
        f = calloc(1, sizeof(*f));
        if (!f || !(f->name = na_strdup(name)) ||
            !(f->help = na_strdup(help ? help : "")) ||
            table_insert(&family_tab, f, fh, family_chain, family_hash)) {
            if (f) {
                free(f->name);
                free(f->help);
                free(f);
            }
            goto out;
        }
        f->type = type;
        f->hash = fh;
        f->tail = &f->first;
        *families_tail = f;
        families_tail = &f->next;
    }
    m = calloc(1, sizeof(*m));
    if (!m || (labels && !(m->labels = na_strdup(labels)))) {
        if (m) {
            free(m->labels);
            free(m);
        }
        m = NULL;
        goto out;
    }
    m->fam = f;
    m->hash = h;
    if (table_insert(&series_tab, m, h, series_chain, series_hash)) {
        free(m->labels);
        free(m);
        m = NULL;
        goto out;
    }
    if (labels) {
        /* A pair left out of the pair table (no memory) only means that
         * na_metrics_remove_label() would not find this series. */
        struct pair_add ctx = {m, 0};
        each_pair(labels, pair_add_one, &ctx);
    }
    *f->tail = m;
    f->tail = &m->next;
    f->live++;
out:
    pthread_mutex_unlock(&lock);
    return m;
}

void na_metric_add(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value += v;
    pthread_mutex_unlock(&lock);
}

void na_metric_set(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value = v;
    pthread_mutex_unlock(&lock);
}

void na_metric_observe(na_metric_t *m, double v) {
    if (!m) {
        return;
    }
    pthread_mutex_lock(&lock);
    m->value += v;
    m->count++;
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (v <= bucket_bounds[i]) {
            m->buckets[i]++;
        }
    }
    pthread_mutex_unlock(&lock);
}

double na_metric_value(const na_metric_t *m) {
    double v;
    if (!m) {
        return 0;
    }
    pthread_mutex_lock(&lock);
    v = m->value;
    pthread_mutex_unlock(&lock);
    return v;
}

void na_metrics_inc(const char *name, const char *help, const char *labels) {
    na_metric_add(na_metrics_get(NA_METRIC_COUNTER, name, help, labels), 1);
}

int na_metrics_remove(const char *name, const char *labels) {
    int removed = 0;
    if (labels && !*labels) {
        labels = NULL;
    }
    uint64_t h = hash_series(name, labels);
    pthread_mutex_lock(&lock);
    struct na_metric_s *m = series_find(name, labels, h);
    if (m && !m->dead) {
        series_kill(m);
        removed = 1;
    }
    pthread_mutex_unlock(&lock);
    return removed;
}

size_t na_metrics_remove_label(const char *pair) {
    size_t removed = 0;
    size_t len = strlen(pair);
    uint64_t h = hash_bytes(HASH_SEED, pair, len);
    pthread_mutex_lock(&lock);
    for (struct pair_node *n = table_first(&pair_tab, h); n; n = n->hnext) {
        if (n->hash != h || n->m->dead) {
            continue;
        }
        struct pair_has ctx = {pair, len, false};
        each_pair(n->m->labels, pair_has_one, &ctx);
        if (ctx.found) {
            series_kill(n->m);
            removed++;
        }
    }
    pthread_mutex_unlock(&lock);
    return removed;
}

static const char *type_name(enum na_metric_type t) {
    return t == NA_METRIC_COUNTER ? "counter"
           : t == NA_METRIC_GAUGE ? "gauge"
                                  : "histogram";
}

char *na_metrics_render(void) {
    struct na_buf b;
    na_buf_init(&b);
    pthread_mutex_lock(&lock);
    for (const struct family *f = families; f; f = f->next) {
        if (!f->live) {
            continue;
        }
        na_buf_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                      type_name(f->type));
        for (const struct na_metric_s *m = f->first; m; m = m->next) {
            if (m->dead) {
                continue;
            }
            const char *l = m->labels ? m->labels : "";
            if (f->type != NA_METRIC_HISTOGRAM) {
                na_buf_printf(&b, "%s%s%s%s %.17g\n", f->name, *l ? "{" : "", l,
                              *l ? "}" : "", m->value);
                continue;
            }
            for (size_t i = 0; i < NBUCKETS; i++) {
                na_buf_printf(&b, "%s_bucket{%s%sle=\"%g\"} %llu\n", f->name, l,
                              *l ? "," : "", bucket_bounds[i], m->buckets[i]);
            }
            na_buf_printf(&b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", f->name, l,
                          *l ? "," : "", m->count);
            na_buf_printf(&b, "%s_sum%s%s%s %.17g\n%s_count%s%s%s %llu\n", f->name,
                          *l ? "{" : "", l, *l ? "}" : "", m->value, f->name,
                          *l ? "{" : "", l, *l ? "}" : "", m->count);
        }
    }
    pthread_mutex_unlock(&lock);
    if (na_fault("metrics_render")) {
        b.oom = true;
    }
    return na_buf_steal(&b);
}

char *na_metrics_label_escape(const char *value, char *buf, size_t size) {
    size_t o = 0;
    const char *p = value ? value : "";
    for (; *p && o + 3 < size; p++) {
        if (*p == '\\' || *p == '"') {
            buf[o++] = '\\';
            buf[o++] = *p;
        } else if (*p == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *p;
        }
    }
    /* Cut short inside a character: drop its first bytes too. A label value
     * that is not UTF-8 makes a scraper refuse the whole text. */
    if (((unsigned char)*p & 0xc0) == 0x80) {
        while (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0x80) {
            o--;
        }
        if (o > 0 && ((unsigned char)buf[o - 1] & 0xc0) == 0xc0) {
            o--;
        }
    }
    if (size) {
        buf[o < size ? o : size - 1] = '\0';
    }
    return buf;
}

static void table_cleanup(struct table *t) {
    free(t->v);
    memset(t, 0, sizeof(*t));
}

void na_metrics_reset(void) {
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < pair_tab.size; i++) {
        struct pair_node *n = pair_tab.v[i];
        while (n) {
            struct pair_node *next = n->hnext;
            free(n);
            n = next;
        }
    }
    while (families) {
        struct family *f = families;
        families = f->next;
        while (f->first) {
            struct na_metric_s *m = f->first;
            f->first = m->next;
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    families_tail = &families;
    table_cleanup(&series_tab);
    table_cleanup(&family_tab);
    table_cleanup(&pair_tab);
    pthread_mutex_unlock(&lock);
}
