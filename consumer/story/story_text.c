/*
 * The features of an article's text (story_internal.h), one view each:
 *   "t:" terms: every word of three or more letters that is not a stop
 *        word, plural-folded, without one common suffix (-ing, -ion, -ed,
 *        ...); hyphenated words also joined ("t:dualuse");
 *   "e:" names: capitalised words not at a sentence start, and acronyms;
 *        a run of two capitalised words is a name as a pair
 *        ("e:south_korea") and as its words ("e:south", "e:korea"), so a
 *        surname alone still meets the full name;
 *   "d:" dates mentioned: a month next to a day number ("d:jan_06");
 *   "n:" figures, read from the raw text: a number with its scale and
 *        percent sign ("84%", "84 percent" and "84 per cent" are all
 *        "n:84%"; "$11.1 billion" and "11.1bn" are "n:11.1b"), and plain
 *        numbers of 10 and more that are neither years nor the day of a
 *        date.
 * Demonyms read as their place ("Japanese" = "Japan"). Words are folded by
 * the rules tokeniser, so a feature folds as a query term does.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/util.h"
#include "story_internal.h"

/* Sorted (strcmp order), for reading; looked up through the lexicon. */
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

/* Peoples' adjectives name their place: "Japanese" is a "Japan" feature. */
static const char *const demonyms[][2] = {
    {"japanese", "japan"},         {"chinese", "china"},
    {"taiwanese", "taiwan"},       {"american", "us"},
    {"korean", "korea"},           {"dutch", "netherlands"},
    {"philippine", "philippines"}, {"filipino", "philippines"},
    {"australian", "australia"},   {"european", "europe"},
    {"british", "britain"},        {"german", "germany"},
    {"french", "france"},          {"indian", "india"},
    {"russian", "russia"},         {"brazilian", "brazil"},
    {"vietnamese", "vietnam"},     {"spanish", "spain"},
    {"italian", "italy"},          {"ukrainian", "ukraine"},
    {"thai", "thailand"},          {"burmese", "myanmar"},
    {"argentine", "argentina"},    {"argentinian", "argentina"},
    {"colombian", "colombia"},     {"canadian", "canada"},
    {"mexican", "mexico"},         {"israeli", "israel"},
    {"iranian", "iran"},           {"turkish", "turkey"},
};

/* Longest place of a demonym ("netherlands", "philippines"). */
#define NA_STORY_PLACE_BYTES 11u

static const char *const month_names[] = {
    "january", "february", "march",     "april",   "may",      "june",
    "july",    "august",   "september", "october", "november", "december",
};

/*
 * The lexicon: every word the features treat apart (stop words, demonyms,
 * month names and their abbreviations) in one hash set built once
 * (lexicon_init()), so that a word costs one hash and a probe or two.
 */
#define NA_STORY_LEX_SLOTS 1024u
struct lex {
    const char *word;
    uint8_t len;
    bool stop;
    uint8_t month;   /* 1..12, or 0 */
    uint8_t demonym; /* index + 1 into demonyms, or 0 */
};
static struct lex lexicon[NA_STORY_LEX_SLOTS];
static pthread_once_t lexicon_once = PTHREAD_ONCE_INIT;

/* A filter before the lexicon: one bit for each (first two bytes, last
 * byte, length) of its words, so most words that are not in it cost a
 * multiplication and a load, not a hash and a probe. */
#define NA_STORY_LEX_FILTER_BITS 4096u
static uint64_t lex_filter[NA_STORY_LEX_FILTER_BITS / 64];
/* and before it, the lengths (bit n: n bytes) of its words by first byte */
static uint16_t lex_lengths[256];

/* @p len >= 2 */
static uint32_t lex_filter_bit(const char *w, size_t len) {
    uint32_t k = (uint32_t)(unsigned char)w[0] | (uint32_t)(unsigned char)w[1] << 8 |
                 (uint32_t)(unsigned char)w[len - 1] << 16 | (uint32_t)len << 24;
    return (k * 0x9e3779b1u) >> 20;
}

static struct lex *lex_slot(const char *w, size_t len) {
    size_t j = (size_t)(na_story_hash(w, len) >> 40) & (NA_STORY_LEX_SLOTS - 1);
    while (lexicon[j].word &&
           (lexicon[j].len != len || memcmp(lexicon[j].word, w, len) != 0)) {
        j = (j + 1) & (NA_STORY_LEX_SLOTS - 1);
    }
    return &lexicon[j];
}

static struct lex *lex_add(const char *w) {
    struct lex *x = lex_slot(w, strlen(w));
    uint32_t bit = lex_filter_bit(w, strlen(w));
    x->word = w;
    x->len = (uint8_t)strlen(w);
    lex_filter[bit / 64] |= 1ull << (bit % 64);
    lex_lengths[(unsigned char)w[0]] |= (uint16_t)(1u << strlen(w));
    return x;
}

static void lexicon_init(void) {
    static const char *const sept = "sept";
    static char abbrev[12][4];
    for (size_t i = 0; i < sizeof(stop_words) / sizeof(stop_words[0]); i++) {
        lex_add(stop_words[i])->stop = true;
    }
    for (size_t i = 0; i < sizeof(demonyms) / sizeof(demonyms[0]); i++) {
        lex_add(demonyms[i][0])->demonym = (uint8_t)(i + 1);
    }
    for (int m = 0; m < 12; m++) {
        lex_add(month_names[m])->month = (uint8_t)(m + 1);
        if (m != 4) { /* "may" is the full name */
            memcpy(abbrev[m], month_names[m], 3);
            lex_add(abbrev[m])->month = (uint8_t)(m + 1);
        }
    }
    lex_add(sept)->month = 9;
}

/* @returns the lexicon's entry of w, or NULL (lexicon_init() has run). */
static const struct lex *lex_find(const char *w, size_t len) {
    if (len < 2 || len > 13 || !(lex_lengths[(unsigned char)w[0]] >> len & 1)) {
        return NULL;
    }
    uint32_t bit = lex_filter_bit(w, len);
    if (!(lex_filter[bit / 64] >> (bit % 64) & 1)) {
        return NULL;
    }
    const struct lex *x = lex_slot(w, len);
    return x->word ? x : NULL;
}

/* An ASCII digit (isdigit() in the C locale the engine runs in). */
static inline bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *w, size_t len) {
    if (!len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(w[i])) {
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

/* Does @p w end with the @p n bytes of @p sfx, and keep 4 before them? */
static inline bool ends(const char *w, size_t len, const char *sfx, size_t n) {
    return len >= n + 4 && !memcmp(w + len - n, sfx, n);
}

/* @returns the length of @p w without one common suffix ("prohibition",
 *          "prohibiting" and "prohibited" all read "prohibit"), keeping at
 *          least 4 letters. */
static size_t light_stem(const char *w, size_t len) {
    /* the suffixes -ations -ation -ions -ion -ings -ing -ed -ment -ers -er,
     * the first that ends the word taken: grouped by their last letter,
     * in that order */
    if (len < 6) {
        return len;
    }
    switch (w[len - 1]) {
    case 's':
        return ends(w, len, "ations", 6) ? len - 6
               : ends(w, len, "ions", 4) ? len - 4
               : ends(w, len, "ings", 4) ? len - 4
               : ends(w, len, "ers", 3)  ? len - 3
                                         : len;
    case 'n':
        return ends(w, len, "ation", 5) ? len - 5
               : ends(w, len, "ion", 3) ? len - 3
                                        : len;
    case 'g':
        return ends(w, len, "ing", 3) ? len - 3 : len;
    case 'd':
        return ends(w, len, "ed", 2) ? len - 2 : len;
    case 't':
        return ends(w, len, "ment", 4) ? len - 4 : len;
    case 'r':
        return ends(w, len, "er", 2) ? len - 2 : len;
    default:
        return len;
    }
}

/* Emit KIND + a (+ "_" + b). */
static bool emit2(na_story_emit_cb *emit, void *ctx, char kind, const char *a,
                  size_t alen, const char *b, size_t blen) {
    char tmp[2 * NA_STORY_FEATURE_BYTES + 4];
    size_t n = 0;
    tmp[n++] = kind;
    tmp[n++] = ':';
    alen = alen < NA_STORY_FEATURE_BYTES ? alen : NA_STORY_FEATURE_BYTES;
    memcpy(tmp + n, a, alen);
    n += alen;
    if (b) {
        blen = blen < NA_STORY_FEATURE_BYTES ? blen : NA_STORY_FEATURE_BYTES;
        tmp[n++] = '_';
        memcpy(tmp + n, b, blen);
        n += blen;
    }
    if (n > NA_STORY_FEATURE_BYTES - 1) {
        n = na_utf8_cut(tmp, n, NA_STORY_FEATURE_BYTES - 1);
    }
    return emit(ctx, tmp, n);
}

/* A word is a term at most and a "y" (na_story_words()): with "K:" it
 * never needs the cut emit2() makes. */
_Static_assert(NA_RULES_MAX_TERM_BYTES + 1 + 2 <= NA_STORY_FEATURE_BYTES - 1,
               "a word's feature fits");

/* Emit KIND + the word @p x's first @p n bytes, the "K:" written in the
 * two bytes before it in the arena (no copy). */
static inline __attribute__((always_inline)) bool
emit_word(na_story_emit_cb *emit, void *ctx, char kind, char *arena,
          const struct na_story_word *x, size_t n) {
    char *t = arena + x->fold - 2;
    t[0] = kind;
    t[1] = ':';
    return emit(ctx, t, n + 2);
}

/* @returns true when words i and i + 1 make a two-word name. */
static bool joins_name(const struct na_story_word *w, size_t i, size_t wn) {
    return i + 1 < wn && w[i].cap && w[i].len >= 3 && !w[i].stop && w[i + 1].adjacent &&
           w[i + 1].cap && !w[i + 1].sent && w[i + 1].len >= 3 && !w[i + 1].stop;
}

/* ---- figures, from the raw text ---- */

static bool ascii_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Is the word of @p wl letters read into @p buf (word_at()) @p lit, a word
 * shorter than the buffer? */
static inline bool word_is(const char *buf, size_t wl, const char *lit) {
    size_t n = strlen(lit);
    return wl == n && !memcmp(buf, lit, n);
}

/* The ASCII word at s[i..) folded to lower case into @p buf (at most
 * @p cap - 1 letters); @returns its length (0: none). */
static size_t word_at(const char *s, size_t len, size_t i, char *buf, size_t cap) {
    size_t n = 0;
    while (i < len && ascii_alpha((unsigned char)s[i])) {
        if (n + 1 < cap) {
            buf[n++] = (char)(s[i] | 0x20); /* an ASCII letter */
        }
        i++;
    }
    buf[n] = '\0';
    return n;
}

/* Does a month name end just before s[i] (skipping spaces)? */
static bool month_before(const char *s, size_t i) {
    size_t e = i;
    while (e > 0 && s[e - 1] == ' ') {
        e--;
    }
    size_t b = e;
    while (b > 0 && ascii_alpha((unsigned char)s[b - 1])) {
        b--;
    }
    char w[12];
    size_t n = 0;
    if (e == b || e - b >= sizeof(w)) {
        return false;
    }
    for (size_t k = b; k < e; k++) {
        w[n++] = (char)(s[k] | 0x20);
    }
    const struct lex *x = lex_find(w, n);
    return x && x->month;
}

/* Does a month name follow s[i..) (after spaces)? */
static bool month_after(const char *s, size_t len, size_t i) {
    char w[12];
    while (i < len && s[i] == ' ') {
        i++;
    }
    size_t n = word_at(s, len, i, w, sizeof(w));
    const struct lex *x = lex_find(w, n);
    return x && x->month;
}

/* Is the "," at s[i] a thousands separator (three digits, then no digit)? */
static bool thousands(const char *s, size_t len, size_t i) {
    return i + 3 < len && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
           is_digit(s[i + 3]) && (i + 4 >= len || !is_digit(s[i + 4]));
}

/*
 * The figure whose first digit is at @p at (a token that starts with a
 * digit): emits its feature, if it is one, and sets *err (NA_ERR_NOMEM when
 * emit failed).
 * @returns where it ends (the tokens before that are its parts).
 */
static const char *figure(const char *s, size_t len, const char *at,
                          na_story_emit_cb *emit, void *ctx, na_err_t *err) {
    size_t i = (size_t)(at - s);
    /* digits, "," before groups of three, one "." before decimals */
    char num[24];
    size_t n = 0;
    bool dot = false, too_long = false;
    size_t j = i;

    *err = NA_OK;
    while (j < len) {
        unsigned char d = (unsigned char)s[j];
        if (is_digit(d)) {
            if (n + 1 < sizeof(num) - 4) {
                num[n++] = (char)d;
            } else {
                too_long = true;
            }
            j++;
        } else if (d == ',' && thousands(s, len, j)) {
            j++; /* thousands separator */
        } else if (d == '.' && !dot && j + 1 < len && is_digit(s[j + 1])) {
            dot = true;
            num[n++] = '.';
            j++;
        } else {
            break;
        }
    }
    if (!n) {
        return s + j + 1; /* not an ASCII digit (a folded one): no figure */
    }
    if (j < len && ascii_alpha((unsigned char)s[j])) {
        /* "11bn", "5m", "3rd": a scale letter, else not a figure */
        char w[12];
        size_t wl = word_at(s, len, j, w, sizeof(w));
        char scale = 0;
        if (word_is(w, wl, "bn") || word_is(w, wl, "b")) {
            scale = 'b';
        } else if (word_is(w, wl, "mn") || word_is(w, wl, "m")) {
            scale = 'm';
        } else if (word_is(w, wl, "tn") || word_is(w, wl, "trn")) {
            scale = 't';
        } else if (word_is(w, wl, "k")) {
            scale = 'k';
        }
        if (scale && !too_long) {
            num[n++] = scale;
            if (!emit2(emit, ctx, 'n', num, n, NULL, 0)) {
                *err = NA_ERR_NOMEM;
            }
        }
        return s + j + wl;
    }
    if (too_long) {
        return s + j;
    }
    /* What follows: "%", or a word of scale or percent. */
    size_t k = j;
    bool percent = false;
    char scale = 0;
    if (k < len && s[k] == '%') {
        percent = true;
    } else {
        while (k < len && s[k] == ' ') {
            k++;
        }
        char w[16];
        size_t wl = word_at(s, len, k, w, sizeof(w));
        if (word_is(w, wl, "percent") || word_is(w, wl, "pct")) {
            percent = true;
        } else if (word_is(w, wl, "per")) {
            char w2[8];
            size_t m = k + wl;
            while (m < len && s[m] == ' ') {
                m++;
            }
            size_t wl2 = word_at(s, len, m, w2, sizeof(w2));
            percent = word_is(w2, wl2, "cent");
        } else if (word_is(w, wl, "billion") || word_is(w, wl, "bn")) {
            scale = 'b';
        } else if (word_is(w, wl, "million") || word_is(w, wl, "mn")) {
            scale = 'm';
        } else if (word_is(w, wl, "trillion") || word_is(w, wl, "tn")) {
            scale = 't';
        } else if (word_is(w, wl, "thousand")) {
            scale = 'k';
        }
    }
    if (scale) {
        num[n++] = scale;
    } else if (percent) {
        num[n++] = '%';
    } else {
        long v = dot ? -1 : small_num(num, n);
        bool year = v >= 1900 && v <= 2100 && n == 4;
        bool day = v >= 1 && v <= 31 && (month_before(s, i) || month_after(s, len, j));
        if (year || day || (v >= 0 && v < 10)) {
            return s + j;
        }
    }
    if (!emit2(emit, ctx, 'n', num, n, NULL, 0)) {
        *err = NA_ERR_NOMEM;
    }
    return s + j;
}

/* ---- words ---- */

/* Note what the lexicon says of word @p x (not a figure); a demonym's
 * place is copied into the arena (room made) after 2 free bytes, as its
 * text. */
static inline void lex_word(struct na_story_text *tx, struct na_story_word *x) {
    const struct lex *lx = lex_find(tx->arena + x->fold, x->len);
    if (lx) {
        x->stop = lx->stop;
        x->month = lx->month;
        if (lx->demonym) {
            const char *place = demonyms[lx->demonym - 1][1];
            size_t n = strlen(place);
            size_t off = tx->arena_len + 2;
            memcpy(tx->arena + off, place, n);
            tx->arena_len = off + n;
            x->fold = (uint32_t)off;
            x->len = (uint16_t)n;
        }
    }
}

void na_story_text_init(struct na_story_text *tx) {
    memset(tx, 0, sizeof(*tx));
    na_rtoks_init(&tx->toks);
}

void na_story_text_cleanup(struct na_story_text *tx) {
    na_rtoks_cleanup(&tx->toks);
    free(tx->w);
    free(tx->joined);
    free(tx->arena);
    memset(tx, 0, sizeof(*tx));
}

na_err_t na_story_text_features(struct na_story_text *tx, const char *s, size_t len,
                                na_story_emit_cb *emit, void *ctx) {
    na_err_t err;

    pthread_once(&lexicon_once, lexicon_init);
    if ((err = na_story_words(tx, s, len))) {
        return err;
    }
    char *arena = tx->arena;
    /* hyphenated words' joined forms first: one term feature each */
    for (size_t i = 0; i < tx->joined_cnt; i++) {
        char *t = arena + tx->joined[i].off - 2;
        t[0] = 't';
        t[1] = ':';
        if (!emit(ctx, t, tx->joined[i].len + 2)) {
            return NA_ERR_NOMEM;
        }
    }
    struct na_story_word *w = tx->w;
    size_t wn = tx->w_cnt;
    /* room for the demonyms' places (lex_word()) */
    if (tx->arena_len + wn * (NA_STORY_PLACE_BYTES + 2) > tx->arena_cap) {
        size_t cap = (tx->arena_len + wn * (NA_STORY_PLACE_BYTES + 2)) * 2;
        char *n = realloc(tx->arena, cap);
        if (!n) {
            return NA_ERR_NOMEM;
        }
        tx->arena = arena = n;
        tx->arena_cap = cap;
    }
    for (size_t i = 0; i < wn; i++) {
        if (!w[i].digits) {
            lex_word(tx, &w[i]);
        }
    }
    for (size_t i = 0; i < wn; i++) {
        struct na_story_word *x = &w[i];
        int m = x->month;
        if (m && x->cap) {
            long d = -1;
            if (i + 1 < wn) {
                d = small_num(arena + w[i + 1].fold, w[i + 1].len);
            }
            if ((d < 1 || d > 31) && i > 0) {
                d = small_num(arena + w[i - 1].fold, w[i - 1].len);
            }
            if (d >= 1 && d <= 31) {
                char day[3] = {(char)('0' + d / 10), (char)('0' + d % 10), 0};
                if (!emit2(emit, ctx, 'd', months[m - 1], 3, day, 2)) {
                    return NA_ERR_NOMEM;
                }
            }
            continue;
        }
        if (x->digits) {
            /* a figure starts here: read it from the raw text */
            const char *end = figure(s, len, s + x->raw, emit, ctx, &err);
            if (err) {
                return err;
            }
            while (i + 1 < wn && s + w[i + 1].raw < end) {
                i++; /* its other parts ("41,000", "11.2") */
            }
            continue;
        }
        if (x->len < 3 || x->stop) {
            continue;
        }
        const char *fold = arena + x->fold;
        if (!emit_word(emit, ctx, 't', arena, x, light_stem(fold, x->len))) {
            return NA_ERR_NOMEM;
        }
        bool run_next = x->cap && joins_name(w, i, wn);
        bool name =
            x->acronym || (x->cap && !x->sent) || (i > 0 && joins_name(w, i - 1, wn));
        if (name && !emit_word(emit, ctx, 'e', arena, x, x->len)) {
            return NA_ERR_NOMEM;
        }
        if (run_next &&
            !emit2(emit, ctx, 'e', fold, x->len, arena + w[i + 1].fold, w[i + 1].len)) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}
