/*
 * Story grouping. See story.h for the contract.
 *
 * Signature of an article (a set of features, each present or not):
 *   "e:" names: capitalised words not at a sentence start and acronyms;
 *        two adjacent capitalised words are one name ("e:south_korea")
 *        instead of two;
 *   "d:" dates: a month next to a day number ("d:jan_06");
 *   "n:" figures: a number with the word after it ("n:25_percent"), and
 *        every number of three or more digits that is not a year;
 *   "t:" terms: every other word of three or more letters that is not a
 *        stop word, plural-folded, without one common suffix (-ing, -ion,
 *        -ed, ...); hyphenated words also joined ("t:dualuse").
 * Demonyms read as their place ("Japanese" = "Japan"). On the article's
 * side, features its title has weigh NA_STORY_TITLE_BOOST times more.
 * Each feature weighs kind weight (names 4, dates 5, figures 1.6, terms 1)
 * x IDF^1.5, where the document frequencies count the signatures seen
 * (assigned and seeded) and are halved whenever the count of documents
 * reaches NA_STORY_IDF_DOCS, a rolling window that forgets old documents
 * smoothly and deterministically. After a halving, features no open story
 * has whose frequency fell below NA_STORY_DF_FORGET leave the dictionary
 * (dict_compact()), so it does not grow with every name ever seen.
 *
 * A story keeps, per feature, the number of its articles that had it.
 * Similarity of an article A and a story S is the cosine of A's weights
 * and S's weights scaled by count/articles; A joins the best story with
 * similarity >= NA_STORY_SIM, else opens a new one. Candidate stories are
 * those posted under A's NA_STORY_PROBE heaviest features in the inverted
 * index (feature -> open stories that have it).
 */
#include "story.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/limits.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "rules_text.h"

/** Bytes of each article field read for the signature. */
#define NA_STORY_FIELD_BYTES (16u * 1024u)
/** Most features kept per article (the heaviest). */
#define NA_STORY_ART_FEATURES 160u
/** Most features kept per story (the most frequent, then heaviest). */
#define NA_STORY_MAX_FEATURES 600u
/** Heaviest article features whose postings give the candidates. */
#define NA_STORY_PROBE 40u
/** Most features in a stored signature (na_story_signature()). */
#define NA_STORY_SIG_FEATURES 200u
/** A feature of more open stories than this gives no candidates. */
#define NA_STORY_PROBE_POSTS 256u
/** Weight factor of an article's features that its title has (headlines
 *  name what the story is about). */
#define NA_STORY_TITLE_BOOST 1.5
/** Similarity needed to join a story. */
#define NA_STORY_SIM 0.17
/** Document frequencies are halved when this many documents were counted. */
#define NA_STORY_IDF_DOCS 20000.0
/** After document frequencies were halved, a feature no open story has and
 *  whose frequency fell below this is forgotten (dict_compact()): a name seen
 *  once is forgotten after two halvings, when it weighs nearly as if unseen. */
#define NA_STORY_DF_FORGET 0.3
/** Pseudo documents in which no feature occurs (IDF smoothing). */
#define NA_STORY_IDF_PRIOR 30.0
/** Longest feature text (bytes). */
#define NA_STORY_FEATURE_BYTES 96u

struct feat {
    char *s;
    uint32_t hash;
    double df;
    struct story **post; /* open stories that have this feature */
    size_t post_cnt, post_cap;
};

struct sfeat {
    uint32_t fid;
    uint32_t cnt;
};

struct story {
    char id[NA_SHA256_HEX_LEN + 1];
    int64_t first, last; /* Unix s */
    size_t n;            /* articles */
    struct sfeat *f;     /* sorted by fid */
    size_t f_cnt;
    size_t idx;       /* in st->stories */
    double norm;      /* cached story_norm() */
    double norm_docs; /* st->docs when norm was computed; 0: stale */
    bool cand;        /* scratch */
};

struct na_stories_s {
    int64_t window_s;
    int64_t now; /* newest article time seen, Unix s; NA_TIME_UNKNOWN at first */
    struct feat *feats;
    size_t feats_cnt, feats_cap;
    uint32_t *slots; /* open addressing: fid + 1, 0 = empty */
    size_t slots_cnt;
    double docs;      /* documents counted in df */
    bool compact_due; /* df were halved: dict_compact() before the next use */
    struct story **stories;
    size_t stories_cnt, stories_cap;
    na_metric_t *m_opened, *m_joined, *m_closed, *m_open, *m_feats; /* process-wide */
};

/* ---------------------------------------------------------------- */
/* Feature dictionary                                               */
/* ---------------------------------------------------------------- */

static uint32_t str_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool slots_grow(na_stories_t *st) {
    size_t n = st->slots_cnt ? st->slots_cnt * 2 : 1024;
    uint32_t *s = calloc(n, sizeof(*s));
    if (!s) {
        return false;
    }
    for (size_t i = 0; i < st->feats_cnt; i++) {
        size_t j = st->feats[i].hash & (n - 1);
        while (s[j]) {
            j = (j + 1) & (n - 1);
        }
        s[j] = (uint32_t)i + 1;
    }
    free(st->slots);
    st->slots = s;
    st->slots_cnt = n;
    return true;
}

/* @returns the feature id of s[0..len), added when @p add; UINT32_MAX when
 *          absent (or on no memory when adding). */
static uint32_t feat_id(na_stories_t *st, const char *s, size_t len, bool add) {
    uint32_t h = str_hash(s, len);
    if (st->slots_cnt) {
        size_t j = h & (st->slots_cnt - 1);
        while (st->slots[j]) {
            struct feat *f = &st->feats[st->slots[j] - 1];
            if (f->hash == h && !strncmp(f->s, s, len) && f->s[len] == '\0') {
                return st->slots[j] - 1;
            }
            j = (j + 1) & (st->slots_cnt - 1);
        }
    }
    if (!add) {
        return UINT32_MAX;
    }
    if ((st->feats_cnt + 1) * 2 > st->slots_cnt && !slots_grow(st)) {
        return UINT32_MAX;
    }
    if (st->feats_cnt == st->feats_cap) {
        size_t cap = st->feats_cap ? st->feats_cap * 2 : 1024;
        struct feat *nf = realloc(st->feats, cap * sizeof(*nf));
        if (!nf) {
            return UINT32_MAX;
        }
        st->feats = nf;
        st->feats_cap = cap;
    }
    struct feat *f = &st->feats[st->feats_cnt];
    memset(f, 0, sizeof(*f));
    f->s = na_strndup(s, len);
    if (!f->s) {
        return UINT32_MAX;
    }
    f->hash = h;
    size_t j = h & (st->slots_cnt - 1);
    while (st->slots[j]) {
        j = (j + 1) & (st->slots_cnt - 1);
    }
    st->slots[j] = (uint32_t)st->feats_cnt + 1;
    return (uint32_t)st->feats_cnt++;
}

static double kind_weight(const char *s) {
    switch (s[0]) {
    case 'e':
        return 4.0;
    case 'd':
        return 5.0;
    case 'n':
        return 1.6;
    default:
        return 1.0;
    }
}

static double feat_weight(const na_stories_t *st, uint32_t fid) {
    const struct feat *f = &st->feats[fid];
    double idf = log((st->docs + NA_STORY_IDF_PRIOR) / (f->df + 1.0));
    if (idf < 0.05) {
        idf = 0.05;
    }
    /* Sharper than plain IDF: rare words tell stories apart. */
    return kind_weight(f->s) * idf * sqrt(idf);
}

static void df_add(na_stories_t *st, uint32_t fid, double cnt) {
    st->feats[fid].df += cnt;
}

static void docs_add(na_stories_t *st, double n) {
    st->docs += n;
    if (st->docs >= NA_STORY_IDF_DOCS) {
        st->docs /= 2;
        for (size_t i = 0; i < st->feats_cnt; i++) {
            st->feats[i].df /= 2;
        }
        st->compact_due = true;
    }
}

/*
 * Forget the features that no open story has and whose document frequency
 * decayed below NA_STORY_DF_FORGET, so that the dictionary holds what recent
 * documents and open stories use, not every name ever seen. Kept features
 * are renumbered in order, so the stories' lists (sorted by id) stay
 * sorted. Runs only between articles: no article's feature ids are held.
 */
static void dict_compact(na_stories_t *st) {
    st->compact_due = false;
    uint32_t *map = malloc((st->feats_cnt + 1) * sizeof(*map));
    if (!map) {
        return; /* tried again at the next halving */
    }
    for (size_t i = 0; i < st->feats_cnt; i++) {
        map[i] = 0;
    }
    for (size_t k = 0; k < st->stories_cnt; k++) {
        const struct story *sy = st->stories[k];
        for (size_t i = 0; i < sy->f_cnt; i++) {
            map[sy->f[i].fid] = 1; /* a story has it */
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < st->feats_cnt; i++) {
        struct feat *f = &st->feats[i];
        if (!map[i] && !f->post_cnt && f->df < NA_STORY_DF_FORGET) {
            free(f->s);
            free(f->post);
            map[i] = UINT32_MAX;
            continue;
        }
        map[i] = (uint32_t)w;
        st->feats[w++] = *f;
    }
    if (w == st->feats_cnt) {
        free(map);
        return;
    }
    for (size_t k = 0; k < st->stories_cnt; k++) {
        struct story *sy = st->stories[k];
        for (size_t i = 0; i < sy->f_cnt; i++) {
            sy->f[i].fid = map[sy->f[i].fid];
        }
    }
    free(map);
    st->feats_cnt = w;
    size_t cap = w + w / 2 > 1024 ? w + w / 2 : 1024;
    if (cap < st->feats_cap) {
        struct feat *nf = realloc(st->feats, cap * sizeof(*nf));
        if (nf) {
            st->feats = nf;
            st->feats_cap = cap;
        }
    }
    size_t slots = 1024;
    while (slots < (w + 1) * 2) {
        slots *= 2;
    }
    uint32_t *ns = calloc(slots, sizeof(*ns));
    if (ns) {
        free(st->slots);
        st->slots = ns;
        st->slots_cnt = slots;
    } else {
        memset(st->slots, 0, st->slots_cnt * sizeof(*st->slots));
    }
    for (size_t i = 0; i < w; i++) {
        size_t j = st->feats[i].hash & (st->slots_cnt - 1);
        while (st->slots[j]) {
            j = (j + 1) & (st->slots_cnt - 1);
        }
        st->slots[j] = (uint32_t)i + 1;
    }
    na_metric_set(st->m_feats, (double)w);
}

size_t na_stories_feature_count(const na_stories_t *st) {
    return st->feats_cnt;
}

static bool post_add(struct feat *f, struct story *s) {
    if (f->post_cnt == f->post_cap) {
        size_t cap = f->post_cap ? f->post_cap * 2 : 4;
        struct story **np = realloc(f->post, cap * sizeof(*np));
        if (!np) {
            return false;
        }
        f->post = np;
        f->post_cap = cap;
    }
    f->post[f->post_cnt++] = s;
    return true;
}

static void post_del(struct feat *f, const struct story *s) {
    for (size_t i = 0; i < f->post_cnt; i++) {
        if (f->post[i] == s) {
            f->post[i] = f->post[--f->post_cnt];
            return;
        }
    }
}

/* ---------------------------------------------------------------- */
/* Signatures of articles                                           */
/* ---------------------------------------------------------------- */

/* Sorted (strcmp order) for bsearch. */
static const char *const stop_words[] = {
    "about",     "according", "account",   "across",    "advertisement", "after",
    "against",   "all",       "also",      "among",     "and",           "any",
    "are",       "around",    "because",   "been",      "before",        "being",
    "between",   "both",      "but",       "can",       "caption",       "click",
    "content",   "copyright", "could",     "day",       "days",          "did",
    "does",      "doing",     "done",      "during",    "each",          "even",
    "first",     "for",       "friday",    "from",      "further",       "get",
    "got",       "had",       "has",       "have",      "her",           "here",
    "him",       "his",       "how",       "however",   "image",         "including",
    "into",      "its",       "itself",    "just",      "last",          "like",
    "login",     "made",      "main",      "make",      "many",          "may",
    "might",     "minutes",   "monday",    "month",     "months",        "more",
    "most",      "much",      "must",      "new",       "news",          "next",
    "not",       "now",       "one",       "only",      "onto",          "other",
    "our",       "out",       "over",      "own",       "part",          "parts",
    "people",    "per",       "photo",     "read",      "report",        "reported",
    "reporting", "reports",   "reuters",   "said",      "same",          "saturday",
    "say",       "says",      "share",     "she",       "should",        "since",
    "skip",      "some",      "statement", "still",     "subscribe",     "subscriber",
    "such",      "sunday",    "take",      "than",      "that",          "the",
    "their",     "them",      "then",      "there",     "these",         "they",
    "this",      "those",     "through",   "thursday",  "time",          "times",
    "today",     "told",      "took",      "tuesday",   "two",           "under",
    "until",     "upon",      "very",      "via",       "was",           "way",
    "wednesday", "week",      "weeks",     "well",      "were",          "what",
    "when",      "where",     "which",     "while",     "who",           "whom",
    "whose",     "why",       "will",      "with",      "within",        "without",
    "would",     "year",      "years",     "yesterday", "yet",           "you",
    "your",
};

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

/* The stop words in a hash set built once (stop_set_init()): a word costs a
 * hash and at most a few compares, not a binary search of strcmp calls. */
#define NA_STORY_STOP_SLOTS 512u
static uint16_t stop_set[NA_STORY_STOP_SLOTS]; /* index + 1 into stop_words */
static uint8_t stop_len[sizeof(stop_words) / sizeof(stop_words[0])];
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

static void stop_set_init(void) {
    for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++) {
        size_t len = strlen(stop_words[i]);
        size_t j = str_hash(stop_words[i], len) & (NA_STORY_STOP_SLOTS - 1);
        while (stop_set[j]) {
            j = (j + 1) & (NA_STORY_STOP_SLOTS - 1);
        }
        stop_set[j] = (uint16_t)(i + 1);
        stop_len[i] = (uint8_t)len;
    }
}

static bool is_stop(const char *w, size_t len) {
    if (len < 2 || len > 13) {
        return false;
    }
    pthread_once(&stop_once, stop_set_init);
    for (size_t j = str_hash(w, len) & (NA_STORY_STOP_SLOTS - 1); stop_set[j];
         j = (j + 1) & (NA_STORY_STOP_SLOTS - 1)) {
        size_t i = stop_set[j] - 1u;
        if (stop_len[i] == len && !memcmp(stop_words[i], w, len)) {
            return true;
        }
    }
    return false;
}

static int month_of(const char *w, size_t len) {
    static const char *const full[] = {"january",   "february", "march",    "april",
                                       "may",       "june",     "july",     "august",
                                       "september", "october",  "november", "december"};
    static const uint8_t full_len[] = {7, 8, 5, 5, 3, 4, 4, 6, 9, 7, 8, 8};
    if (len < 3 || len > 9) {
        return 0;
    }
    for (int m = 0; m < 12; m++) {
        if ((len == full_len[m] && !memcmp(w, full[m], len)) ||
            (len == 3 && !memcmp(w, full[m], 3) && m != 4) ||
            (len == 4 && m == 8 && !memcmp(w, "sept", 4))) {
            return m + 1;
        }
    }
    return 0;
}

/* Peoples' adjectives name their place: "Japanese" is a "Japan" feature. */
static void demonym(const char **w, size_t *len) {
    static const char *const map[][2] = {
        {"japanese", "japan"},         {"chinese", "china"},
        {"taiwanese", "taiwan"},       {"american", "us"},
        {"korean", "korea"},           {"dutch", "netherlands"},
        {"philippine", "philippines"}, {"filipino", "philippines"},
        {"australian", "australia"},   {"european", "europe"},
        {"british", "britain"},        {"german", "germany"},
        {"french", "france"},          {"indian", "india"},
        {"russian", "russia"},         {"brazilian", "brazil"},
        {"vietnamese", "vietnam"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strlen(map[i][0]) == *len && !memcmp(*w, map[i][0], *len)) {
            *w = map[i][1];
            *len = strlen(map[i][1]);
            return;
        }
    }
}

static bool all_digits(const char *w, size_t len) {
    if (!len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)w[i])) {
            return false;
        }
    }
    return true;
}

static long small_num(const char *w, size_t len) {
    long v = 0;
    if (!all_digits(w, len) || len > 6) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        v = v * 10 + (w[i] - '0');
    }
    return v;
}

/* A word token of the source, as the signature reads it. */
struct wtok {
    const char *fold; /* plural-folded, lower case */
    size_t len;
    const char *raw; /* in the source */
    size_t raw_len;
    bool cap;      /* starts with an upper-case letter */
    bool acronym;  /* two or more letters, all upper case */
    bool sent;     /* first word of a sentence (or line) */
    bool adjacent; /* follows the previous word with only spaces between */
};

struct sig {
    char (*f)[NA_STORY_FEATURE_BYTES];
    size_t cnt, cap;
    uint32_t *slots; /* open addressing over f: index + 1, 0 = empty */
    size_t slots_cnt;
};

static void sig_cleanup(struct sig *g) {
    free(g->f);
    free(g->slots);
}

static bool sig_rehash(struct sig *g) {
    size_t n = g->slots_cnt ? g->slots_cnt * 2 : 256;
    uint32_t *sl = calloc(n, sizeof(*sl));
    if (!sl) {
        return false;
    }
    for (size_t i = 0; i < g->cnt; i++) {
        size_t j = str_hash(g->f[i], strlen(g->f[i])) & (n - 1);
        while (sl[j]) {
            j = (j + 1) & (n - 1);
        }
        sl[j] = (uint32_t)i + 1;
    }
    free(g->slots);
    g->slots = sl;
    g->slots_cnt = n;
    return true;
}

/* Add feature KIND + a (+ "_" + b) once. @returns false on no memory. */
static bool sig_add(struct sig *g, const char *kind, const char *a, size_t alen,
                    const char *b, size_t blen) {
    char tmp[2 * NA_STORY_FEATURE_BYTES + 4];
    size_t n = strlen(kind);
    memcpy(tmp, kind, n);
    alen = alen < NA_STORY_FEATURE_BYTES ? alen : NA_STORY_FEATURE_BYTES;
    memcpy(tmp + n, a, alen);
    n += alen;
    if (b) {
        blen = blen < NA_STORY_FEATURE_BYTES ? blen : NA_STORY_FEATURE_BYTES;
        tmp[n++] = '_';
        memcpy(tmp + n, b, blen);
        n += blen;
    }
    n = na_utf8_cut(tmp, n, NA_STORY_FEATURE_BYTES - 1);
    tmp[n] = '\0';
    if ((g->cnt + 1) * 2 > g->slots_cnt && !sig_rehash(g)) {
        return false;
    }
    size_t j = str_hash(tmp, n) & (g->slots_cnt - 1);
    while (g->slots[j]) {
        if (!strcmp(g->f[g->slots[j] - 1], tmp)) {
            return true;
        }
        j = (j + 1) & (g->slots_cnt - 1);
    }
    if (g->cnt == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char(*nf)[NA_STORY_FEATURE_BYTES] = realloc(g->f, cap * sizeof(*nf));
        if (!nf) {
            return false;
        }
        g->f = nf;
        g->cap = cap;
    }
    memcpy(g->f[g->cnt], tmp, n + 1);
    g->slots[j] = (uint32_t)++g->cnt;
    return true;
}

static bool is_upper_ascii(char c) {
    return c >= 'A' && c <= 'Z';
}

/* @returns the length of @p w without one common suffix ("prohibition",
 *          "prohibiting" and "prohibited" all read "prohibit"), keeping at
 *          least 4 letters. */
static size_t light_stem(const char *w, size_t len) {
    static const char *const suffixes[] = {"ations", "ation", "ions", "ion", "ings",
                                           "ing",    "ed",    "ment", "ers", "er"};
    static const uint8_t suffix_len[] = {6, 5, 4, 3, 4, 3, 2, 4, 3, 2};
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t n = suffix_len[i];
        if (len >= n + 4 && !memcmp(w + len - n, suffixes[i], n)) {
            return len - n;
        }
    }
    return len;
}

/* @returns true when words i and i + 1 make a two-word name. */
static bool joins_name(const struct wtok *w, size_t i, size_t wn) {
    return i + 1 < wn && w[i].cap && w[i].len >= 3 && !is_stop(w[i].fold, w[i].len) &&
           w[i + 1].adjacent && w[i + 1].cap && !w[i + 1].sent && w[i + 1].len >= 3 &&
           !is_stop(w[i + 1].fold, w[i + 1].len);
}

/* Read the features of one text into @p g. */
static na_err_t sig_text(const char *s, size_t len, struct sig *g) {
    struct na_rtoks t;
    struct wtok *w = NULL;
    size_t wn = 0;
    char *stems = NULL;
    na_err_t err = NA_OK;

    if (len > NA_STORY_FIELD_BYTES) {
        len = na_utf8_cut(s, len, NA_STORY_FIELD_BYTES);
    }
    na_rtoks_init(&t);
    if ((err = na_rules_tokenize(s, len, &t))) {
        goto out;
    }
    w = calloc(t.cnt + 1, sizeof(*w));
    stems = malloc(t.text_len + t.cnt * 2 + 1);
    if (!w || !stems) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    size_t soff = 0;
    uint32_t prev_end = 0;
    for (size_t i = 0; i < t.cnt; i++) {
        const struct na_rtok *k = &t.v[i];
        if (k->pos_end != k->pos) {
            /* A hyphenated word's joined form: one term feature. */
            size_t jl = na_rtok_stem(&t, k, stems + soff);
            if (jl >= 3 && !sig_add(g, "t:", stems + soff, jl, NULL, 0)) {
                err = NA_ERR_NOMEM;
                goto out;
            }
            continue;
        }
        struct wtok *x = &w[wn++];
        size_t sl = na_rtok_stem(&t, k, stems + soff);
        x->fold = stems + soff;
        x->len = sl;
        demonym(&x->fold, &x->len);
        soff += sl + 1;
        x->raw = s + k->bstart;
        x->raw_len = k->bend - k->bstart;
        {
            unsigned char c0 = (unsigned char)x->raw[0];
            unsigned char c1 = x->raw_len > 1 ? (unsigned char)x->raw[1] : 0;
            /* ASCII, or Latin-1 upper case (U+00C0..U+00DE). */
            x->cap = is_upper_ascii(x->raw[0]) ||
                     (c0 == 0xc3 && c1 >= 0x80 && c1 <= 0x9e && c1 != 0x97);
        }
        size_t up = 0;
        for (size_t j = 0; j < x->raw_len; j++) {
            up += is_upper_ascii(x->raw[j]);
        }
        x->acronym = up >= 2 && up == x->raw_len;
        /* Sentence start: previous non-space byte ends a sentence. */
        size_t b = k->bstart;
        bool adjacent = true;
        while (b > prev_end && b > 0) {
            char c = s[b - 1];
            if (c == ' ') {
                b--;
                continue;
            }
            adjacent = false;
            break;
        }
        x->adjacent = wn > 1 && adjacent;
        x->sent = true;
        for (size_t j = k->bstart; j > 0; j--) {
            char c = s[j - 1];
            if (c == ' ' || c == '\t' || c == '"' || c == '(' || c == '\'') {
                continue;
            }
            x->sent =
                c == '.' || c == '!' || c == '?' || c == '\n' || c == ':' || c == '|';
            break;
        }
        prev_end = k->bend;
    }

    for (size_t i = 0; i < wn && !err; i++) {
        struct wtok *x = &w[i];
        bool stop = is_stop(x->fold, x->len);
        bool digits = all_digits(x->fold, x->len);
        int m = month_of(x->fold, x->len);
        if (m && x->cap) {
            long d = -1;
            if (i + 1 < wn) {
                d = small_num(w[i + 1].fold, w[i + 1].len);
            }
            if ((d < 1 || d > 31) && i > 0) {
                d = small_num(w[i - 1].fold, w[i - 1].len);
            }
            if (d >= 1 && d <= 31) {
                char day[3] = {(char)('0' + d / 10), (char)('0' + d % 10), 0};
                char mon[8];
                memcpy(mon, months[m - 1], 4);
                if (!sig_add(g, "d:", mon, 3, day, 2)) {
                    err = NA_ERR_NOMEM;
                }
            }
            continue;
        }
        if (digits) {
            long v = small_num(x->fold, x->len);
            bool year = v >= 1900 && v <= 2100;
            if (!year && i + 1 < wn && !all_digits(w[i + 1].fold, w[i + 1].len) &&
                !is_stop(w[i + 1].fold, w[i + 1].len) && w[i + 1].len >= 2 &&
                !month_of(w[i + 1].fold, w[i + 1].len)) {
                if (!sig_add(g, "n:", x->fold, x->len, w[i + 1].fold, w[i + 1].len)) {
                    err = NA_ERR_NOMEM;
                }
            } else if (!year && x->len >= 3) {
                if (!sig_add(g, "n:", x->fold, x->len, NULL, 0)) {
                    err = NA_ERR_NOMEM;
                }
            }
            continue;
        }
        if (stop || x->len < 3) {
            continue;
        }
        if (!sig_add(g, "t:", x->fold, light_stem(x->fold, x->len), NULL, 0)) {
            err = NA_ERR_NOMEM;
            break;
        }
        /* Runs of capitalised words ("Sanae Takaichi", "South Korea") are one
         * name: the pair is the feature, not its words. */
        bool run_next = joins_name(w, i, wn);
        bool run_prev = i > 0 && joins_name(w, i - 1, wn);
        bool name = x->acronym || (x->cap && !x->sent);
        if (name && !run_next && !run_prev &&
            !sig_add(g, "e:", x->fold, x->len, NULL, 0)) {
            err = NA_ERR_NOMEM;
        }
        if (run_next && !sig_add(g, "e:", x->fold, x->len, w[i + 1].fold, w[i + 1].len)) {
            err = NA_ERR_NOMEM;
        }
    }
out:
    free(w);
    free(stems);
    na_rtoks_cleanup(&t);
    return err;
}

/* ---------------------------------------------------------------- */
/* Stories                                                          */
/* ---------------------------------------------------------------- */

na_stories_t *na_stories_new(int64_t window_ms) {
    na_stories_t *st = calloc(1, sizeof(*st));
    if (!st) {
        return NULL;
    }
    st->window_s = (window_ms > 0 ? window_ms : NA_STORY_WINDOW_MS_DEFAULT) / 1000;
    if (st->window_s < 1) {
        st->window_s = 1;
    }
    st->now = NA_TIME_UNKNOWN;
    st->m_opened = na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_articles_total",
                                  "Articles grouped into stories, by outcome",
                                  "outcome=\"new_story\"");
    st->m_joined =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_articles_total",
                       "Articles grouped into stories, by outcome", "outcome=\"joined\"");
    st->m_closed = na_metrics_get(NA_METRIC_COUNTER, "newsalert_story_closed_total",
                                  "Stories closed at the end of their window", NULL);
    st->m_open = na_metrics_get(NA_METRIC_GAUGE, "newsalert_story_open",
                                "Stories open for new articles", NULL);
    st->m_feats = na_metrics_get(NA_METRIC_GAUGE, "newsalert_story_features",
                                 "Features in the story grouping's dictionary", NULL);
    return st;
}

static void story_free(struct story *s) {
    if (s) {
        free(s->f);
        free(s);
    }
}

void na_stories_destroy(na_stories_t *st) {
    if (!st) {
        return;
    }
    for (size_t i = 0; i < st->stories_cnt; i++) {
        story_free(st->stories[i]);
    }
    free(st->stories);
    for (size_t i = 0; i < st->feats_cnt; i++) {
        free(st->feats[i].s);
        free(st->feats[i].post);
    }
    free(st->feats);
    free(st->slots);
    free(st);
}

size_t na_stories_count(const na_stories_t *st) {
    return st->stories_cnt;
}

static void story_close(na_stories_t *st, struct story *s) {
    for (size_t i = 0; i < s->f_cnt; i++) {
        post_del(&st->feats[s->f[i].fid], s);
    }
    size_t idx = s->idx;
    st->stories[idx] = st->stories[--st->stories_cnt];
    st->stories[idx]->idx = idx;
    story_free(s);
}

size_t na_stories_evict(na_stories_t *st, int64_t now) {
    size_t closed = 0;
    for (size_t i = 0; i < st->stories_cnt;) {
        struct story *s = st->stories[i];
        if (s->last < now - st->window_s) {
            story_close(st, s);
            closed++;
            na_metric_add(st->m_closed, 1);
        } else {
            i++;
        }
    }
    na_metric_set(st->m_open, (double)st->stories_cnt);
    return closed;
}

static struct story *story_find(const na_stories_t *st, const char *id) {
    for (size_t i = 0; i < st->stories_cnt; i++) {
        if (!strcmp(st->stories[i]->id, id)) {
            return st->stories[i];
        }
    }
    return NULL;
}

size_t na_story_article_count(const na_stories_t *st, const char *story_id) {
    const struct story *s = story_find(st, story_id);
    return s ? s->n : 0;
}

void na_story_alert_id(const char *story_id, const char *topic,
                       char alert_id[NA_SHA256_HEX_LEN + 1]) {
    const char *parts[] = {"alert/v1", story_id, topic, NULL};
    na_sha256_hex_parts(parts, alert_id);
}

static int sfeat_cmp(const void *a, const void *b) {
    const struct sfeat *x = a;
    const struct sfeat *y = b;
    return x->fid < y->fid ? -1 : x->fid > y->fid;
}

static struct story *story_new(na_stories_t *st, const char *id) {
    if (st->stories_cnt == st->stories_cap) {
        size_t cap = st->stories_cap ? st->stories_cap * 2 : 64;
        struct story **ns = realloc(st->stories, cap * sizeof(*ns));
        if (!ns) {
            return NULL;
        }
        st->stories = ns;
        st->stories_cap = cap;
    }
    struct story *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->idx = st->stories_cnt;
    st->stories[st->stories_cnt++] = s;
    return s;
}

/* A story feature with its weight, for choosing which ones to keep. */
struct keep {
    struct sfeat f;
    double w;
};

/* Order for keeping a story's features: most articles, then heaviest. */
static int keep_cmp(const void *a, const void *b) {
    const struct keep *x = a;
    const struct keep *y = b;
    if (x->f.cnt != y->f.cnt) {
        return x->f.cnt > y->f.cnt ? -1 : 1;
    }
    if (x->w != y->w) {
        return x->w > y->w ? -1 : 1;
    }
    return x->f.fid < y->f.fid ? -1 : x->f.fid > y->f.fid;
}

static bool story_has(const struct story *s, uint32_t fid) {
    struct sfeat key = {fid, 0};
    return s->f_cnt && bsearch(&key, s->f, s->f_cnt, sizeof(key), sfeat_cmp) != NULL;
}

/* Merge the sorted (fid, cnt) list @p add into @p s and index new ones;
 * on failure @p s and the index are as they were. */
static na_err_t story_merge(na_stories_t *st, struct story *s, const struct sfeat *add,
                            size_t add_cnt) {
    struct sfeat *m = malloc((s->f_cnt + add_cnt) * sizeof(*m) + 1);
    size_t i = 0, j = 0, n = 0;
    if (!m) {
        return NA_ERR_NOMEM;
    }
    for (j = 0; j < add_cnt; j++) {
        if (!story_has(s, add[j].fid) && !post_add(&st->feats[add[j].fid], s)) {
            for (size_t k = 0; k < j; k++) {
                if (!story_has(s, add[k].fid)) {
                    post_del(&st->feats[add[k].fid], s);
                }
            }
            free(m);
            return NA_ERR_NOMEM;
        }
    }
    j = 0;
    while (i < s->f_cnt || j < add_cnt) {
        if (j == add_cnt || (i < s->f_cnt && s->f[i].fid < add[j].fid)) {
            m[n++] = s->f[i++];
        } else if (i == s->f_cnt || add[j].fid < s->f[i].fid) {
            m[n++] = add[j++];
        } else {
            m[n] = s->f[i++];
            m[n++].cnt += add[j++].cnt;
        }
    }
    if (n > NA_STORY_MAX_FEATURES) {
        struct keep *kv = malloc(n * sizeof(*kv));
        if (kv) {
            for (size_t k = 0; k < n; k++) {
                kv[k].f = m[k];
                kv[k].w = feat_weight(st, m[k].fid);
            }
            qsort(kv, n, sizeof(*kv), keep_cmp);
            for (size_t k = 0; k < n; k++) {
                m[k] = kv[k].f;
            }
            for (size_t k = NA_STORY_MAX_FEATURES; k < n; k++) {
                post_del(&st->feats[m[k].fid], s);
            }
            n = NA_STORY_MAX_FEATURES;
            qsort(m, n, sizeof(*m), sfeat_cmp);
            free(kv);
        } /* else: keep them all until the next merge */
    }
    free(s->f);
    s->f = m;
    s->f_cnt = n;
    s->norm_docs = 0;
    return NA_OK;
}

/* No time from an article or a ledger record is believed later than this:
 * the wall clock plus some skew between hosts. */
static int64_t latest_believable(void) {
    return na_now_ms() / 1000 + NA_STORY_FUTURE_SLACK_S;
}

/* The article's time: published_at, never later than its fetch (the
 * producer bounds it so, but other writers may not) nor than the wall
 * clock: one article dated in the future would move the story clock and
 * close every open story. */
static int64_t article_time(const na_stories_t *st, const struct na_article *a) {
    int64_t fetched = a->fetched_at != NA_TIME_UNKNOWN && a->fetched_at > 0
                          ? a->fetched_at
                          : NA_TIME_UNKNOWN;
    int64_t t = a->published_at != NA_TIME_UNKNOWN ? a->published_at : fetched;
    if (t == NA_TIME_UNKNOWN) {
        return st->now != NA_TIME_UNKNOWN ? st->now : 0;
    }
    if (fetched != NA_TIME_UNKNOWN && t > fetched) {
        t = fetched;
    }
    int64_t latest = latest_believable();
    return t > latest ? latest : t;
}

struct afeat {
    uint32_t fid;
    bool title;
    double w;
};

static int afeat_w_cmp(const void *a, const void *b) {
    const struct afeat *x = a;
    const struct afeat *y = b;
    if (x->w != y->w) {
        return x->w > y->w ? -1 : 1;
    }
    return x->fid < y->fid ? -1 : x->fid > y->fid;
}

static int afeat_fid_cmp(const void *a, const void *b) {
    const struct afeat *x = a;
    const struct afeat *y = b;
    return x->fid < y->fid ? -1 : x->fid > y->fid;
}

static double story_norm(const na_stories_t *st, struct story *s) {
    double sum = 0;
    /* Cached while the story is unchanged and the document count moved by
     * less than 2 % (IDF barely moves then). */
    if (s->norm_docs > 0 && fabs(st->docs - s->norm_docs) < 0.02 * s->norm_docs) {
        return s->norm;
    }
    for (size_t i = 0; i < s->f_cnt; i++) {
        double w = feat_weight(st, s->f[i].fid) * (double)s->f[i].cnt / (double)s->n;
        sum += w * w;
    }
    s->norm = sqrt(sum);
    s->norm_docs = st->docs;
    return s->norm;
}

na_err_t na_stories_assign(na_stories_t *st, const struct na_article *a,
                           char story_id[NA_SHA256_HEX_LEN + 1], bool *is_new) {
    struct sig g = {0};
    struct afeat *af = NULL;
    struct afeat *aw = NULL;
    struct sfeat *sf = NULL;
    struct story **cands = NULL;
    size_t cands_cnt = 0;
    na_err_t err = NA_OK;
    bool created = false;
    int64_t t = article_time(st, a);

    if (is_new) {
        *is_new = false;
    }
    if (st->now == NA_TIME_UNKNOWN || t > st->now) {
        st->now = t;
    }
    na_stories_evict(st, st->now);
    if (st->compact_due) {
        dict_compact(st);
    }

    const char *fields[] = {a->title, a->summary, a->content};
    size_t title_cnt = 0;
    for (size_t i = 0; i < 3 && !err; i++) {
        if (fields[i]) {
            err = sig_text(fields[i], strlen(fields[i]), &g);
        }
        if (i == 0) {
            title_cnt = g.cnt;
        }
    }
    if (err) {
        goto out;
    }
    af = calloc(g.cnt + 1, sizeof(*af));
    if (!af) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    size_t an = 0;
    for (size_t i = 0; i < g.cnt; i++) {
        uint32_t fid = feat_id(st, g.f[i], strlen(g.f[i]), true);
        if (fid == UINT32_MAX) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        af[an].fid = fid;
        af[an].title = i < title_cnt;
        af[an++].w = 0;
    }
    /* The document counts before it is compared, so its own words weigh. */
    docs_add(st, 1);
    for (size_t i = 0; i < an; i++) {
        df_add(st, af[i].fid, 1);
    }
    for (size_t i = 0; i < an; i++) {
        af[i].w = feat_weight(st, af[i].fid) * (af[i].title ? NA_STORY_TITLE_BOOST : 1.0);
    }
    qsort(af, an, sizeof(*af), afeat_w_cmp);
    if (an > NA_STORY_ART_FEATURES) {
        an = NA_STORY_ART_FEATURES;
    }
    double anorm = 0;
    for (size_t i = 0; i < an; i++) {
        anorm += af[i].w * af[i].w;
    }
    anorm = sqrt(anorm);

    /* Candidates: stories posted under the heaviest features that are not
     * common (a feature of many open stories says little). */
    size_t cands_cap = 0;
    for (size_t i = 0; i < an && i < NA_STORY_PROBE; i++) {
        struct feat *f = &st->feats[af[i].fid];
        if (f->post_cnt > NA_STORY_PROBE_POSTS) {
            continue;
        }
        for (size_t k = 0; k < f->post_cnt; k++) {
            struct story *s = f->post[k];
            if (s->cand) {
                continue;
            }
            if (cands_cnt == cands_cap) {
                size_t cap = cands_cap ? cands_cap * 2 : 16;
                struct story **nc = realloc(cands, cap * sizeof(*nc));
                if (!nc) {
                    err = NA_ERR_NOMEM;
                    goto out_cands;
                }
                cands = nc;
                cands_cap = cap;
            }
            s->cand = true;
            cands[cands_cnt++] = s;
        }
    }
    /* The article's features by id, for merging with each candidate's. */
    sf = malloc((an + 1) * sizeof(*sf));
    if (!sf) {
        err = NA_ERR_NOMEM;
        goto out_cands;
    }
    for (size_t i = 0; i < an; i++) {
        sf[i].fid = af[i].fid;
        sf[i].cnt = 1;
    }
    qsort(sf, an, sizeof(*sf), sfeat_cmp);
    aw = malloc((an + 1) * sizeof(*aw));
    if (!aw) {
        err = NA_ERR_NOMEM;
        goto out_cands;
    }
    memcpy(aw, af, an * sizeof(*aw));
    qsort(aw, an, sizeof(*aw), afeat_fid_cmp);
    struct story *best = NULL;
    double best_sim = 0;
    for (size_t k = 0; k < cands_cnt && anorm > 0; k++) {
        struct story *s = cands[k];
        double dot = 0;
        for (size_t i = 0, j = 0; i < an && j < s->f_cnt;) {
            if (aw[i].fid < s->f[j].fid) {
                i++;
            } else if (aw[i].fid > s->f[j].fid) {
                j++;
            } else {
                double w = feat_weight(st, aw[i].fid);
                dot += aw[i].w * w * (double)s->f[j].cnt / (double)s->n;
                i++;
                j++;
            }
        }
        double sn = story_norm(st, s);
        double sim = sn > 0 ? dot / (anorm * sn) : 0;
        if (sim > best_sim || (sim == best_sim && best && strcmp(s->id, best->id) < 0)) {
            best_sim = sim;
            best = s;
        }
    }
    if (!best || best_sim < NA_STORY_SIM) {
        const char *parts[] = {"story/v1", a->id, NULL};
        char id[NA_SHA256_HEX_LEN + 1];
        na_sha256_hex_parts(parts, id);
        best = story_find(st, id);
        if (!best) {
            if (!(best = story_new(st, id))) {
                err = NA_ERR_NOMEM;
                goto out_cands;
            }
            best->first = t;
            created = true;
        }
    }
    if ((err = story_merge(st, best, sf, an))) {
        if (created) {
            story_close(st, best);
        }
        goto out_cands;
    }
    if (created && is_new) {
        *is_new = true;
    }
    na_metric_add(created ? st->m_opened : st->m_joined, 1);
    na_metric_set(st->m_open, (double)st->stories_cnt);
    best->n++;
    if (t > best->last) {
        best->last = t;
    }
    memcpy(story_id, best->id, NA_SHA256_HEX_LEN + 1);
out_cands:
    free(aw);
    for (size_t k = 0; k < cands_cnt; k++) {
        cands[k]->cand = false;
    }
out:
    free(cands);
    free(sf);
    free(af);
    sig_cleanup(&g);
    return err;
}

json_t *na_story_signature(const na_stories_t *st, const char *story_id) {
    const struct story *s = story_find(st, story_id);
    struct keep *kv = NULL;
    json_t *f = NULL;
    json_t *root = NULL;
    if (!s) {
        return NULL;
    }
    /* The features that most articles had, then the heaviest, so a stored
     * signature stays a few KB. */
    kv = malloc((s->f_cnt + 1) * sizeof(*kv));
    f = json_object();
    root = json_pack("{s:i, s:I, s:I}", "v", 1, "t", (json_int_t)s->last, "n",
                     (json_int_t)s->n);
    if (!kv || !f || !root) {
        goto fail;
    }
    for (size_t i = 0; i < s->f_cnt; i++) {
        kv[i].f = s->f[i];
        kv[i].w = feat_weight(st, s->f[i].fid);
    }
    qsort(kv, s->f_cnt, sizeof(*kv), keep_cmp);
    for (size_t i = 0; i < s->f_cnt && i < NA_STORY_SIG_FEATURES; i++) {
        if (json_object_set_new(f, st->feats[kv[i].f.fid].s, json_integer(kv[i].f.cnt))) {
            goto fail;
        }
    }
    if (json_object_set_new(root, "f", f)) {
        f = NULL;
        goto fail;
    }
    free(kv);
    return root;
fail:
    free(kv);
    json_decref(f);
    json_decref(root);
    return NULL;
}

static bool hex_id(const char *id) {
    if (!id || strlen(id) != NA_SHA256_HEX_LEN) {
        return false;
    }
    for (size_t i = 0; i < NA_SHA256_HEX_LEN; i++) {
        if (!isxdigit((unsigned char)id[i])) {
            return false;
        }
    }
    return true;
}

na_err_t na_stories_seed(na_stories_t *st, const char *story_id, const json_t *signature,
                         int64_t published_at) {
    json_t *f = json_object_get(signature, "f");
    json_t *n = json_object_get(signature, "n");
    json_t *t = json_object_get(signature, "t");
    struct sfeat *sf = NULL;
    size_t cnt = 0;
    const char *key;
    json_t *val;
    na_err_t err = NA_OK;

    if (!hex_id(story_id) || !json_is_object(f) || !json_is_integer(n) ||
        json_integer_value(n) < 1 ||
        (published_at == NA_TIME_UNKNOWN && !json_is_integer(t))) {
        return NA_ERR_INVALID;
    }
    if (published_at == NA_TIME_UNKNOWN) {
        published_at = (int64_t)json_integer_value(t);
    }
    if (published_at > latest_believable()) {
        published_at = latest_believable(); /* as article_time() */
    }
    if (st->now != NA_TIME_UNKNOWN && published_at < st->now - st->window_s) {
        return NA_OK;
    }
    if (st->compact_due) {
        dict_compact(st);
    }
    json_object_foreach((json_t *)f, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 1 ||
            strlen(key) >= NA_STORY_FEATURE_BYTES || strlen(key) < 3 || key[1] != ':') {
            return NA_ERR_INVALID;
        }
    }
    sf = malloc((json_object_size(f) + 1) * sizeof(*sf));
    if (!sf) {
        return NA_ERR_NOMEM;
    }
    json_object_foreach((json_t *)f, key, val) {
        uint32_t fid = feat_id(st, key, strlen(key), true);
        if (fid == UINT32_MAX) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        json_int_t c = json_integer_value(val);
        if (c > json_integer_value(n)) {
            c = json_integer_value(n);
        }
        sf[cnt].fid = fid;
        sf[cnt++].cnt = (uint32_t)c;
    }
    qsort(sf, cnt, sizeof(*sf), sfeat_cmp);
    struct story *s = story_find(st, story_id);
    if (!s) {
        if (!(s = story_new(st, story_id))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        s->first = published_at;
    }
    if ((err = story_merge(st, s, sf, cnt))) {
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        df_add(st, sf[i].fid, sf[i].cnt);
    }
    docs_add(st, (double)json_integer_value(n));
    s->n += (size_t)json_integer_value(n);
    if (published_at > s->last) {
        s->last = published_at;
    }
    if (st->now == NA_TIME_UNKNOWN || published_at > st->now) {
        st->now = published_at;
    }
out:
    free(sf);
    return err;
}

na_err_t na_stories_seed_record(na_stories_t *st, const json_t *value,
                                const char **story_id) {
    json_t *story = json_object_get(value, "story");
    const char *sid = json_string_value(json_object_get(story, "id"));
    const char *published = json_string_value(
        json_object_get(json_object_get(value, "article"), "published_at"));
    int64_t t = NA_TIME_UNKNOWN;
    *story_id = sid;
    if (!sid || !json_is_object(json_object_get(story, "signature"))) {
        return NA_OK;
    }
    if (published && na_time_parse_rfc3339(published, &t)) {
        t = NA_TIME_UNKNOWN;
    }
    return na_stories_seed(st, sid, json_object_get(story, "signature"), t);
}
