/*
 * bench_classify: articles per second of the rules engine over generated
 * ~4 KB articles with N generated topics, or of a naive per-rule baseline
 * (each topic's query evaluated by scanning the lower-cased text once per
 * term, as a loop of strstr-like searches would), on the calling thread.
 *
 *   bench_classify --rules N [--mode engine|naive] [--seconds S]
 *                  [--scan auto|tokenise|bitmap|db] [--news JSONL [--words FILE]]
 *
 * --scan picks how the engine scans fields (rules_internal.h
 * na_rules_db_mode): the default, every field through the tokeniser (the
 * scan before the fast path), the fast path without or always with the key
 * database; the case name says which when not the default.
 * Prints JSON lines: articles_per_s (CPU time of the process), mb_per_s,
 * matches_per_article and peak_rss_kb (getrusage ru_maxrss) for the case
 * "rules=N" (engine) or "rules=N baseline=naive".
 *
 * The generator is deterministic. Vocabulary: 30,000 made-up words; article
 * words are drawn Zipf-like (the 100 most frequent act as function words),
 * 4 KB per article, a title of 8 words; 256 distinct articles, cycled.
 * Topic i is one of four shapes over words drawn uniformly from ranks 100
 * and up (so rules name the rarer words, as topic rules do):
 *   "A B" AND (C OR D*)     A AND B NOT C     A NEAR/5 B
 *   title:A^2 OR (B AND C)
 *
 * --news reads real prose instead (make_news(): the project's labelled
 * articles, cut into 4 KB bodies) and draws the same four shapes over the
 * words of a word list; the case name starts "corpus=news". --rules-file
 * runs a rules file instead of generated topics (case "rules=file(N)").
 */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <jansson.h>

#include "newsalert/article.h"
#include "newsalert/util.h"
#include "rules.h"
#include "rules_match.h"

#define VOCAB 30000
#define COMMON 100
#define ARTICLES 256
#define ARTICLE_BYTES 4096

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static char synth_vocab[VOCAB][16];
static double zipf_cdf[VOCAB];

/* Rule words: the synthetic vocabulary from rank COMMON on, or (news) the
 * word list less the corpus's COMMON most frequent words. */
static const char **lex;
static size_t lex_cnt;

static void make_vocab(void) {
    static const char *const syl[] = {
        "ka", "lo",  "mi",  "ren", "to",  "va",  "del", "sor", "pa", "ne",  "qui", "bar",
        "fu", "gal", "zen", "wi",  "tor", "ple", "cra", "don", "ex", "mun", "tiv", "go"};
    double sum = 0;
    for (size_t i = 0; i < VOCAB; i++) {
        size_t v = i + 7;
        size_t n = 0;
        char *w = synth_vocab[i];
        /* 2 to 4 syllables, unique by construction (base 24 digits + length) */
        w[n] = '\0';
        do {
            const char *s = syl[v % 24];
            size_t l = strlen(s);
            memcpy(w + n, s, l);
            n += l;
            v /= 24;
        } while (v && n < 12);
        w[n++] = 'd'; /* never ends in s: plural folding stays out of the way */
        w[n] = '\0';
        sum += 1.0 / ((double)i + 10.0);
        zipf_cdf[i] = sum;
    }
    for (size_t i = 0; i < VOCAB; i++) {
        zipf_cdf[i] /= sum;
    }
    lex = malloc((VOCAB - COMMON) * sizeof(*lex));
    for (size_t i = COMMON; i < VOCAB; i++) {
        lex[lex_cnt++] = synth_vocab[i];
    }
}

static const char *zipf_word(void) {
    double u = (double)(rnd() >> 11) / 9007199254740992.0;
    size_t lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return synth_vocab[lo];
}

static const char *rare_word(void) {
    return synth_vocab[COMMON + rnd() % (VOCAB - COMMON)];
}

static const char *rule_word(void) {
    return lex[rnd() % lex_cnt];
}

/* ---- topics ---- */

struct topic {
    int shape;
    const char *w[4];
};

static struct topic *make_topics(size_t n, char **json) {
    struct topic *t = calloc(n, sizeof(*t));
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, "{\"topics\":[\n");
    for (size_t i = 0; i < n; i++) {
        t[i].shape = (int)(i % 4);
        for (int k = 0; k < 4; k++) {
            t[i].w[k] = rule_word();
        }
        const char *const *w = t[i].w;
        na_buf_printf(&b, "%s{\"name\":\"t%zu\",\"threshold\":1,\"query\":\"",
                      i ? ",\n" : "", i);
        switch (t[i].shape) {
        case 0:
            na_buf_printf(&b, "\\\"%s %s\\\" AND (%s OR %.5s*)", w[0], w[1], w[2], w[3]);
            break;
        case 1:
            na_buf_printf(&b, "%s AND %s NOT %s", w[0], w[1], w[2]);
            break;
        case 2:
            na_buf_printf(&b, "%s NEAR/5 %s", w[0], w[1]);
            break;
        default:
            na_buf_printf(&b, "title:%s^2 OR (%s AND %s)", w[0], w[1], w[2]);
            break;
        }
        na_buf_puts(&b, "\"}");
    }
    na_buf_puts(&b, "]}\n");
    *json = na_buf_steal(&b);
    return t;
}

/* ---- articles ---- */

static void make_articles(struct na_article *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        struct na_buf b;
        na_article_init(&a[i]);
        snprintf(a[i].id, sizeof(a[i].id), "a%zu", i);
        na_buf_init(&b);
        for (int k = 0; k < 8; k++) {
            na_buf_printf(&b, "%s%s", k ? " " : "", k % 3 ? zipf_word() : rare_word());
        }
        a[i].title = na_buf_steal(&b);
        na_buf_init(&b);
        size_t words = 0;
        while (b.len < ARTICLE_BYTES - 20) {
            const char *w = words % 9 == 4 ? rare_word() : zipf_word();
            na_buf_printf(&b, "%s%s", words ? " " : "", w);
            words++;
            if (words % 17 == 0) {
                na_buf_puts(&b, ".");
            }
        }
        a[i].content = na_buf_steal(&b);
    }
}

/* ---- the news corpus ---- */

static char lower_c(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

struct doc {
    char *title;
    char *text;
};

static int cmp_count_desc(const void *a, const void *b) {
    const json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "n"));
    const json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "n"));
    return (x < y) - (x > y);
}

/* Lower-case ASCII words of s, counted in @p counts. */
static void count_words(json_t *counts, const char *s) {
    char w[64];
    size_t n = 0;
    for (const char *p = s;; p++) {
        char c = lower_c(*p);
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (n < sizeof(w) - 1) {
                w[n++] = c;
            }
            continue;
        }
        if (n) {
            w[n] = '\0';
            json_t *v = json_object_get(counts, w);
            json_object_set_new(counts, w,
                                json_integer(v ? json_integer_value(v) + 1 : 1));
            n = 0;
        }
        if (!*p) {
            break;
        }
    }
}

/*
 * News articles: @p path holds JSON lines with "title" and "text" (the
 * project's labelled set). Article i has the title of one of them and a body
 * of their texts in a seeded order, cut at a space near ARTICLE_BYTES. Rule
 * words come from the word list @p words_path (one word per line; ASCII
 * letters only, 3 or more, lower-cased, without the corpus's COMMON most
 * frequent words), drawn uniformly: rules name words of the language, most
 * of which a given article does not use.
 */
static int make_news(struct na_article *a, size_t n, const char *path,
                     const char *words_path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_classify: %s: cannot open\n", path);
        return -1;
    }
    struct doc *docs = NULL;
    size_t cnt = 0, cap = 0;
    char line[65536];
    json_t *counts = json_object();
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        const char *t = json_string_value(json_object_get(o, "title"));
        const char *x = json_string_value(json_object_get(o, "text"));
        if (t && x) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 256;
                docs = realloc(docs, cap * sizeof(*docs));
            }
            docs[cnt].title = strdup(t);
            docs[cnt].text = strdup(x);
            count_words(counts, t);
            count_words(counts, x);
            cnt++;
        }
        json_decref(o);
    }
    fclose(f);
    if (!cnt) {
        fprintf(stderr, "bench_classify: %s: no articles\n", path);
        return -1;
    }
    /* the COMMON most frequent words of the corpus stay out of the rules */
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v) {
        json_array_append_new(
            arr, json_pack("{s:s,s:I}", "w", k, "n", (json_int_t)json_integer_value(v)));
    }
    size_t nw = json_array_size(arr);
    json_t **sorted = malloc((nw + 1) * sizeof(*sorted));
    for (size_t i = 0; i < nw; i++) {
        sorted[i] = json_array_get(arr, i);
    }
    qsort(sorted, nw, sizeof(*sorted), cmp_count_desc);
    json_t *common = json_object();
    for (size_t i = 0; i < nw && i < COMMON; i++) {
        json_object_set(common, json_string_value(json_object_get(sorted[i], "w")),
                        json_true());
    }
    free(sorted);
    json_decref(arr);
    json_decref(counts);

    FILE *wf = fopen(words_path, "r");
    if (!wf) {
        fprintf(stderr, "bench_classify: %s: cannot open (a word list, one per line)\n",
                words_path);
        return -1;
    }
    json_t *seen = json_object();
    size_t lcap = 0;
    lex = NULL;
    lex_cnt = 0;
    while (fgets(line, sizeof(line), wf)) {
        size_t l = strcspn(line, "\r\n");
        bool ok = l >= 3 && l < 16;
        for (size_t i = 0; ok && i < l; i++) {
            line[i] = lower_c(line[i]);
            ok = line[i] >= 'a' && line[i] <= 'z';
        }
        line[l] = '\0';
        if (!ok || json_object_get(common, line) || json_object_get(seen, line)) {
            continue;
        }
        json_object_set(seen, line, json_true());
        if (lex_cnt == lcap) {
            lcap = lcap ? lcap * 2 : 4096;
            lex = realloc(lex, lcap * sizeof(*lex));
        }
        lex[lex_cnt++] = strdup(line);
    }
    fclose(wf);
    json_decref(seen);
    json_decref(common);
    if (lex_cnt < 1000) {
        fprintf(stderr, "bench_classify: %s: too few words (%zu)\n", words_path, lex_cnt);
        return -1;
    }

    for (size_t i = 0; i < n; i++) {
        struct na_buf b;
        na_article_init(&a[i]);
        snprintf(a[i].id, sizeof(a[i].id), "a%zu", i);
        a[i].title = strdup(docs[rnd() % cnt].title);
        na_buf_init(&b);
        while (b.len < ARTICLE_BYTES) {
            na_buf_printf(&b, "%s%s", b.len ? "\n\n" : "", docs[rnd() % cnt].text);
        }
        size_t cut = ARTICLE_BYTES;
        while (cut > 0 && b.data[cut] != ' ') {
            cut--;
        }
        b.data[cut] = '\0';
        a[i].content = na_buf_steal(&b);
    }
    for (size_t i = 0; i < cnt; i++) {
        free(docs[i].title);
        free(docs[i].text);
    }
    free(docs);
    return 0;
}

/* ---- the naive baseline ---- */

static bool word_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Next whole-word (or prefix) occurrence of w in s at or after from. */
static const char *find_word(const char *s, size_t len, size_t from, const char *w,
                             bool prefix) {
    size_t wl = strlen(w);
    const char *p = s + from;
    const char *end = s + len;
    while (p + wl <= end) {
        const char *q = memmem(p, (size_t)(end - p), w, wl);
        if (!q) {
            return NULL;
        }
        bool left = q == s || !word_byte(q[-1]);
        bool right = prefix || q + wl == end || !word_byte(q[wl]);
        if (left && right) {
            return q;
        }
        p = q + 1;
    }
    return NULL;
}

static bool has(const char *s, size_t len, const char *w) {
    return find_word(s, len, 0, w, false) != NULL;
}

static size_t words_between(const char *a, const char *b) {
    size_t n = 0;
    for (const char *p = a; p < b; p++) {
        n += *p == ' ';
    }
    return n;
}

static bool naive_topic(const struct topic *t, const char *title, size_t tl,
                        const char *body, size_t bl) {
    const char *const *w = t->w;
    char phrase[40];
    char pre[8];
    switch (t->shape) {
    case 0:
        snprintf(phrase, sizeof(phrase), "%s %s", w[0], w[1]);
        snprintf(pre, sizeof(pre), "%.5s", w[3]);
        for (int f = 0; f < 2; f++) {
            const char *s = f ? body : title;
            size_t l = f ? bl : tl;
            if (has(s, l, phrase) && (has(s, l, w[2]) || find_word(s, l, 0, pre, true))) {
                return true;
            }
        }
        return false;
    case 1:
        return (has(title, tl, w[0]) || has(body, bl, w[0])) &&
               (has(title, tl, w[1]) || has(body, bl, w[1])) &&
               !(has(title, tl, w[2]) || has(body, bl, w[2]));
    case 2:
        for (size_t from = 0;;) {
            const char *a = find_word(body, bl, from, w[0], false);
            if (!a) {
                return false;
            }
            for (size_t f2 = 0;;) {
                const char *b = find_word(body, bl, f2, w[1], false);
                if (!b) {
                    break;
                }
                size_t d = b > a ? words_between(a, b) : words_between(b, a);
                if (d <= 5) {
                    return true;
                }
                f2 = (size_t)(b - body) + 1;
            }
            from = (size_t)(a - body) + 1;
        }
    default:
        return has(title, tl, w[0]) || ((has(title, tl, w[1]) || has(body, bl, w[1])) &&
                                        (has(title, tl, w[2]) || has(body, bl, w[2])));
    }
}

static size_t naive_classify(const struct topic *t, size_t n, const struct na_article *a,
                             char *tbuf, char *bbuf) {
    size_t tl = strlen(a->title);
    size_t bl = strlen(a->content);
    size_t matches = 0;
    for (size_t i = 0; i < tl; i++) {
        tbuf[i] = lower_c(a->title[i]);
    }
    for (size_t i = 0; i < bl; i++) {
        bbuf[i] = lower_c(a->content[i]);
    }
    for (size_t i = 0; i < n; i++) {
        matches += naive_topic(&t[i], tbuf, tl, bbuf, bl);
    }
    return matches;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    size_t nrules = 10;
    bool naive = false;
    double seconds = 2.0;
    const char *news = NULL;
    const char *words = "/usr/share/dict/words";
    const char *rules_file = NULL;
    char errstr[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc) {
            nrules = (size_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            naive = !strcmp(argv[++i], "naive");
        } else if (!strcmp(argv[i], "--scan") && i + 1 < argc) {
            const char *m = argv[++i];
            na_rules_db_mode = !strcmp(m, "tokenise") ? NA_RULES_DB_OFF
                               : !strcmp(m, "bitmap") ? NA_RULES_DB_BITMAP
                               : !strcmp(m, "db")     ? NA_RULES_DB_ALWAYS
                                                      : NA_RULES_DB_AUTO;
        } else if (!strcmp(argv[i], "--news") && i + 1 < argc) {
            news = argv[++i];
        } else if (!strcmp(argv[i], "--rules-file") && i + 1 < argc) {
            rules_file = argv[++i];
        } else if (!strcmp(argv[i], "--words") && i + 1 < argc) {
            words = argv[++i];
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: bench_classify --rules N [--mode engine|naive] "
                            "[--seconds S] [--scan auto|tokenise|bitmap|db]\n"
                            "                     [--news JSONL [--words FILE]] "
                            "[--rules-file FILE]\n");
            return 2;
        }
    }
    make_vocab();
    struct na_article *arts = calloc(ARTICLES, sizeof(*arts));
    char *json = NULL;
    struct topic *topics = NULL;
    if (news) {
        /* the word list for the rules depends on the corpus */
        if (make_news(arts, ARTICLES, news, words)) {
            return 1;
        }
        topics = make_topics(nrules, &json);
    } else {
        topics = make_topics(nrules, &json);
        make_articles(arts, ARTICLES);
    }
    na_rules_t *rules = NULL;
    if (rules_file && naive) {
        fprintf(stderr, "bench_classify: --rules-file has no naive baseline\n");
        return 2;
    }
    if (rules_file ? na_rules_load_file(rules_file, &rules, errstr, sizeof(errstr))
        : !naive   ? na_rules_load_buf(json, strlen(json), "generated", &rules, errstr,
                                       sizeof(errstr))
                   : NA_OK) {
        fprintf(stderr, "bench_classify: %s\n", errstr);
        return 1;
    }
    /* the harness's own byte count, taken once, not per classification */
    size_t sizes[ARTICLES];
    for (size_t i = 0; i < ARTICLES; i++) {
        sizes[i] = strlen(arts[i].title) + strlen(arts[i].content);
    }
    char *tbuf = malloc(ARTICLE_BYTES * 2);
    char *bbuf = malloc(ARTICLE_BYTES * 2);
    size_t done = 0, matches = 0, bytes = 0;
    double t0 = cpu_s();
    double t1 = t0;
    while (t1 - t0 < seconds || done < ARTICLES) {
        const struct na_article *a = &arts[done % ARTICLES];
        if (naive) {
            matches += naive_classify(topics, nrules, a, tbuf, bbuf);
        } else {
            struct na_classification c;
            if (na_rules_classify(rules, a, &c)) {
                fprintf(stderr, "bench_classify: out of memory\n");
                return 1;
            }
            matches += c.matches_cnt;
            na_classification_cleanup(&c);
        }
        bytes += sizes[done % ARTICLES];
        done++;
        if (done % 16 == 0 || naive) {
            t1 = cpu_s();
        }
    }
    t1 = cpu_s();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char cs[128];
    char rn[32];
    if (rules_file) {
        snprintf(rn, sizeof(rn), "file(%zu)", na_rules_topic_count(rules));
    } else {
        snprintf(rn, sizeof(rn), "%zu", nrules);
    }
    snprintf(cs, sizeof(cs), "%srules=%s%s%s", news ? "corpus=news " : "", rn,
             naive ? " baseline=naive" : "",
             !naive && na_rules_db_mode == NA_RULES_DB_OFF      ? " scan=tokenise"
             : !naive && na_rules_db_mode == NA_RULES_DB_BITMAP ? " scan=bitmap"
             : !naive && na_rules_db_mode == NA_RULES_DB_ALWAYS ? " scan=db"
                                                                : "");
    double el = t1 - t0;
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"articles_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           cs, (double)done / el);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"mb_per_s\","
           "\"value\":%.1f,\"unit\":\"MB/s\"}\n",
           cs, (double)bytes / el / 1e6);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"matches_per_article\","
           "\"value\":%.3f,\"unit\":\"1\"}\n",
           cs, (double)matches / (double)done);
    printf("{\"bench\":\"classify\",\"case\":\"%s\",\"metric\":\"peak_rss_kb\","
           "\"value\":%ld,\"unit\":\"KiB\"}\n",
           cs, ru.ru_maxrss);
    fflush(stdout);
    na_rules_destroy(rules);
    for (size_t i = 0; i < ARTICLES; i++) {
        na_article_cleanup(&arts[i]);
    }
    free(arts);
    free(topics);
    free(json);
    free(tbuf);
    free(bbuf);
    return 0;
}
