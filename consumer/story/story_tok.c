/*
 * Tokenising for story features: the tokens na_rules_tokenize() gives (so
 * a feature folds as a query term does), at ASCII speed. The text is cut
 * at ASCII white space, which never joins two tokens there (a pending
 * hyphenated word ends at any separator, and no UTF-8 sequence holds such
 * a byte); a chunk that is all ASCII goes through fast_chunk(), written
 * for ASCII only, and any other chunk through na_rules_tokenize().
 * tests/unit/test_story.c checks both give the same tokens.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "story_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Bytes of room kept past the folded text for word_copy()'s stores. */
#define NA_STORY_TOK_SLACK 16u

/* Byte classes: W word (ASCII letter or digit), S white space, H not ASCII. */
#define W 1
#define S 2
#define H 4
static const unsigned char cls[256] = {
    ['\t'] = S, ['\n'] = S, ['\v'] = S, ['\f'] = S, ['\r'] = S, [' '] = S,  ['0'] = W,
    ['1'] = W,  ['2'] = W,  ['3'] = W,  ['4'] = W,  ['5'] = W,  ['6'] = W,  ['7'] = W,
    ['8'] = W,  ['9'] = W,  ['A'] = W,  ['B'] = W,  ['C'] = W,  ['D'] = W,  ['E'] = W,
    ['F'] = W,  ['G'] = W,  ['H'] = W,  ['I'] = W,  ['J'] = W,  ['K'] = W,  ['L'] = W,
    ['M'] = W,  ['N'] = W,  ['O'] = W,  ['P'] = W,  ['Q'] = W,  ['R'] = W,  ['S'] = W,
    ['T'] = W,  ['U'] = W,  ['V'] = W,  ['W'] = W,  ['X'] = W,  ['Y'] = W,  ['Z'] = W,
    ['a'] = W,  ['b'] = W,  ['c'] = W,  ['d'] = W,  ['e'] = W,  ['f'] = W,  ['g'] = W,
    ['h'] = W,  ['i'] = W,  ['j'] = W,  ['k'] = W,  ['l'] = W,  ['m'] = W,  ['n'] = W,
    ['o'] = W,  ['p'] = W,  ['q'] = W,  ['r'] = W,  ['s'] = W,  ['t'] = W,  ['u'] = W,
    ['v'] = W,  ['w'] = W,  ['x'] = W,  ['y'] = W,  ['z'] = W,  [0x80] = H, [0x81] = H,
    [0x82] = H, [0x83] = H, [0x84] = H, [0x85] = H, [0x86] = H, [0x87] = H, [0x88] = H,
    [0x89] = H, [0x8a] = H, [0x8b] = H, [0x8c] = H, [0x8d] = H, [0x8e] = H, [0x8f] = H,
    [0x90] = H, [0x91] = H, [0x92] = H, [0x93] = H, [0x94] = H, [0x95] = H, [0x96] = H,
    [0x97] = H, [0x98] = H, [0x99] = H, [0x9a] = H, [0x9b] = H, [0x9c] = H, [0x9d] = H,
    [0x9e] = H, [0x9f] = H, [0xa0] = H, [0xa1] = H, [0xa2] = H, [0xa3] = H, [0xa4] = H,
    [0xa5] = H, [0xa6] = H, [0xa7] = H, [0xa8] = H, [0xa9] = H, [0xaa] = H, [0xab] = H,
    [0xac] = H, [0xad] = H, [0xae] = H, [0xaf] = H, [0xb0] = H, [0xb1] = H, [0xb2] = H,
    [0xb3] = H, [0xb4] = H, [0xb5] = H, [0xb6] = H, [0xb7] = H, [0xb8] = H, [0xb9] = H,
    [0xba] = H, [0xbb] = H, [0xbc] = H, [0xbd] = H, [0xbe] = H, [0xbf] = H, [0xc0] = H,
    [0xc1] = H, [0xc2] = H, [0xc3] = H, [0xc4] = H, [0xc5] = H, [0xc6] = H, [0xc7] = H,
    [0xc8] = H, [0xc9] = H, [0xca] = H, [0xcb] = H, [0xcc] = H, [0xcd] = H, [0xce] = H,
    [0xcf] = H, [0xd0] = H, [0xd1] = H, [0xd2] = H, [0xd3] = H, [0xd4] = H, [0xd5] = H,
    [0xd6] = H, [0xd7] = H, [0xd8] = H, [0xd9] = H, [0xda] = H, [0xdb] = H, [0xdc] = H,
    [0xdd] = H, [0xde] = H, [0xdf] = H, [0xe0] = H, [0xe1] = H, [0xe2] = H, [0xe3] = H,
    [0xe4] = H, [0xe5] = H, [0xe6] = H, [0xe7] = H, [0xe8] = H, [0xe9] = H, [0xea] = H,
    [0xeb] = H, [0xec] = H, [0xed] = H, [0xee] = H, [0xef] = H, [0xf0] = H, [0xf1] = H,
    [0xf2] = H, [0xf3] = H, [0xf4] = H, [0xf5] = H, [0xf6] = H, [0xf7] = H, [0xf8] = H,
    [0xf9] = H, [0xfa] = H, [0xfb] = H, [0xfc] = H, [0xfd] = H, [0xfe] = H, [0xff] = H,
};

/* ASCII lower case of a byte. */
static unsigned char lower[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;
static void tables_init(void); /* lower, and gap_next below */

/*
 * Copy the run of ASCII letters and digits at p[i..len) to @p out in lower
 * case. @returns where the run ends. With SSE2, sixteen bytes at a time:
 * a run's bytes are found by comparisons (a byte >= 0x80 is negative as a
 * signed char, so in no range), letters get the case bit (32) set, and the
 * sixteen bytes are stored whole: @p out has NA_STORY_TOK_SLACK bytes of
 * room past the run (reserve() keeps them). tests/unit/test_story.c
 * compares the tokens with the rules tokeniser's.
 */
static inline __attribute__((always_inline)) size_t
word_copy(const unsigned char *p, size_t len, size_t i, char *out) {
#if defined(__SSE2__)
    const __m128i d0 = _mm_set1_epi8('0' - 1), d1 = _mm_set1_epi8('9' + 1);
    const __m128i l0 = _mm_set1_epi8('a' - 1), l1 = _mm_set1_epi8('z' + 1);
    const __m128i case_bit = _mm_set1_epi8(32);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* a letter is one in lower case with the case bit set */
        __m128i lo = _mm_or_si128(v, case_bit);
        __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(lo, l0), _mm_cmplt_epi8(lo, l1));
        __m128i word = _mm_or_si128(
            _mm_and_si128(_mm_cmpgt_epi8(v, d0), _mm_cmplt_epi8(v, d1)), letter);
        _mm_storeu_si128((__m128i *)(void *)out,
                         _mm_or_si128(v, _mm_and_si128(letter, case_bit)));
        unsigned m = (unsigned)_mm_movemask_epi8(word);
        if (m != 0xffffu) {
            return i + (size_t)__builtin_ctz(~m);
        }
        i += 16;
        out += 16;
    }
#endif
    while (i < len && (cls[p[i]] & W)) {
        *out++ = (char)lower[p[i++]];
    }
    return i;
}

/* @p c: a byte, or -1 (past the end: a separator). */
static bool ascii_word(int c) {
    return c >= 0 && (cls[c] & W);
}

/* Is p[i..) (just after a word, i < len) a possessive "'s" that ends the
 * word ("Taiwan's" is "Taiwan")? */
static bool possessive_at(const unsigned char *p, size_t len, size_t i) {
    int after = i + 1 < len ? p[i + 1] : -1;
    if (p[i] != '\'' || (after != 's' && after != 'S')) {
        return false;
    }
    int after2 = i + 2 < len ? p[i + 2] : -1;
    return !ascii_word(after2) && (after2 < 0 || !(cls[after2] & H));
}

/* Does the byte p[i] (just after a word of @p cps bytes, i < len) join
 * it to the next part: a "-" before a letter or digit, or a "." between
 * one-letter parts ("U.S." reads as one word)? */
static bool joins_at(const unsigned char *p, size_t len, size_t i, size_t cps) {
    int after = i + 1 < len ? p[i + 1] : -1;
    if (p[i] == '-') {
        return ascii_word(after);
    }
    if (p[i] == '.' && cps == 1 && ascii_word(after)) {
        int after2 = i + 2 < len ? p[i + 2] : -1;
        return !ascii_word(after2);
    }
    return false;
}

/* Room for @p tokens more tokens and @p bytes more folded bytes. */
static bool reserve(struct na_rtoks *t, size_t tokens, size_t bytes) {
    if (t->cnt + tokens > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->cnt + tokens) {
            cap *= 2;
        }
        struct na_rtok *v = realloc(t->v, cap * sizeof(*v));
        if (!v) {
            return false;
        }
        t->v = v;
        t->cap = cap;
    }
    bytes += NA_STORY_TOK_SLACK;
    if (t->text_len + bytes > t->text_cap) {
        size_t cap = t->text_cap ? t->text_cap : 256;
        while (cap < t->text_len + bytes) {
            cap *= 2;
        }
        char *p = realloc(t->text, cap);
        if (!p) {
            return false;
        }
        t->text = p;
        t->text_cap = cap;
    }
    return true;
}

static void stem(struct na_rtoks *t, struct na_rtok *tok) {
    bool y = false;
    if (tok->truncated) {
        tok->stem_len = tok->fold_len;
        return;
    }
    tok->stem_len =
        (uint16_t)na_rules_plural_fold(t->text + tok->fold_off, tok->fold_len, &y);
    tok->stem_y = y;
}

/* The joined token of a hyphenated (or dotted) word of tokens first..last,
 * as na_rules_tokenize() makes it (room reserved). */
static void join_parts(struct na_rtoks *t, size_t first) {
    size_t last = t->cnt - 1;
    size_t total = 0;
    if (last <= first || last - first + 1 > 8) {
        return;
    }
    for (size_t i = first; i <= last; i++) {
        if (t->v[i].truncated) {
            return;
        }
        total += t->v[i].fold_len;
    }
    if (total > NA_RULES_MAX_TERM_BYTES) {
        return;
    }
    size_t off = t->text_len;
    for (size_t i = first; i <= last; i++) {
        memcpy(t->text + t->text_len, t->text + t->v[i].fold_off, t->v[i].fold_len);
        t->text_len += t->v[i].fold_len;
    }
    struct na_rtok *tok = &t->v[t->cnt++];
    memset(tok, 0, sizeof(*tok));
    tok->bstart = t->v[first].bstart;
    tok->bend = t->v[last].bend;
    tok->pos = t->v[first].pos;
    tok->pos_end = t->v[last].pos;
    tok->fold_off = (uint32_t)off;
    tok->fold_len = (uint16_t)total;
    stem(t, tok);
}

/*
 * Tokenise the chunk that starts at s[*at] (not white space) up to the next
 * white space (or @p len), if it is all ASCII, and set *at past it.
 * @returns false, having added nothing, when the chunk holds a byte that is
 *          not ASCII (*at is then where that byte is).
 */
static bool fast_chunk(const char *s, size_t len, size_t *at, struct na_rtoks *t) {
    const unsigned char *p = (const unsigned char *)s;
    size_t first_tok = t->cnt, first_text = t->text_len;
    uint32_t pos = t->cnt ? t->v[t->cnt - 1].pos_end + 1 : 0;
    long comp_first = -1; /* first token of the hyphenated word being read */
    size_t i = *at;

    for (;;) {
        unsigned char c = i < len ? cls[p[i]] : S;
        if (!(c & W)) {
            if (c & H) {
                t->cnt = first_tok; /* not ASCII: the rules tokeniser reads it */
                t->text_len = first_text;
                *at = i;
                return false;
            }
            if (comp_first >= 0) {
                join_parts(t, (size_t)comp_first);
                comp_first = -1;
            }
            if (c & S) {
                break;
            }
            i++;
            continue;
        }
        size_t start = i;
        size_t off = t->text_len;
        char *out = t->text + off;
        i = word_copy(p, len, i, out);
        out += i - start;
        size_t cps = i - start;
        /* longer than a term: the first bytes kept, for prefixes */
        size_t kept = cps > NA_RULES_MAX_TERM_BYTES ? NA_RULES_MAX_TERM_BYTES : cps;
        t->text_len = off + kept;
        struct na_rtok *tok = &t->v[t->cnt++];
        memset(tok, 0, sizeof(*tok));
        tok->bstart = (uint32_t)start;
        tok->bend = (uint32_t)i;
        tok->pos = tok->pos_end = pos++;
        tok->fold_off = (uint32_t)off;
        tok->fold_len = (uint16_t)kept;
        tok->truncated = cps > NA_RULES_MAX_TERM_BYTES;
        stem(t, tok);
        if (i >= len) {
            continue; /* the end: closes the word above */
        }
        if (possessive_at(p, len, i)) {
            i += 2;
            if (comp_first >= 0) {
                join_parts(t, (size_t)comp_first);
                comp_first = -1;
            }
            continue;
        }
        if (joins_at(p, len, i, cps)) {
            if (comp_first < 0) {
                comp_first = (long)(t->cnt - 1);
            }
            i++;
        } else if (comp_first >= 0) {
            join_parts(t, (size_t)comp_first);
            comp_first = -1;
        }
    }
    *at = i;
    return true;
}

na_err_t na_story_tokenize(const char *s, size_t len, struct na_rtoks *t) {
    const unsigned char *p = (const unsigned char *)s;
    pthread_once(&tables_once, tables_init);
    t->cnt = 0;
    t->text_len = 0;
    t->oom = false;
    if (len > UINT32_MAX / 4) {
        len = UINT32_MAX / 4;
    }
    /* tokens: at most one per byte plus one joined per two; folded text:
     * the bytes plus the joined copies */
    if (!reserve(t, len + len / 2 + 2, 2 * len + 2)) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < len;) {
        while (i < len && (cls[p[i]] & S)) {
            i++;
        }
        if (i == len) {
            break;
        }
        size_t start = i;
        if (fast_chunk(s, len, &i, t)) {
            continue;
        }
        /* A chunk with bytes that are not ASCII: the rules tokeniser. */
        while (i < len && !(cls[p[i]] & S)) {
            i++;
        }
        size_t from = t->cnt;
        na_err_t err = na_rules_tokenize(s + start, i - start, t);
        if (err) {
            return err;
        }
        for (size_t k = from; k < t->cnt; k++) {
            t->v[k].bstart += (uint32_t)start;
            t->v[k].bend += (uint32_t)start;
        }
        /* the rules tokeniser grows its arrays as it needs; the fast path
         * needs the room reserved above */
        if (!reserve(t, len + len / 2 + 2, 2 * len + 2)) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}

/* ---- words, for the features (na_story_words()) ---- */

/* Bytes looked through, going back from a word, for a sentence start:
 * G_SKIP white space and opening quotes, G_END what ends a sentence; any
 * other byte (0) is inside one. */
#define G_SKIP 1
#define G_END 2
static const unsigned char gap_cls[256] = {
    [' '] = G_SKIP,  ['\t'] = G_SKIP, ['"'] = G_SKIP, ['('] = G_SKIP,
    ['\''] = G_SKIP, ['.'] = G_END,   ['!'] = G_END,  ['?'] = G_END,
    ['\n'] = G_END,  [':'] = G_END,   ['|'] = G_END,
};

/* The gap since the previous word, read forward: GAP_SPACES while it is
 * only spaces, GAP_SENT when a word here starts a sentence (the last byte
 * that is not a space or an opening quote ends one, or there is none and
 * no previous word). gap_next[gap][byte] is the gap with one byte more. */
#define GAP_SPACES 1u
#define GAP_SENT 2u
static unsigned char gap_next[4][256];

static void gap_init(void) {
    for (unsigned g = 0; g < 4; g++) {
        for (unsigned b = 0; b < 256; b++) {
            unsigned c = gap_cls[b];
            unsigned sent = c == G_SKIP ? g & GAP_SENT : c == G_END ? GAP_SENT : 0;
            gap_next[g][b] = (unsigned char)(sent | (b == ' ' ? g & GAP_SPACES : 0));
        }
    }
}

/* Fill the tables built once: lower, gap_next. */
static void tables_init(void) {
    for (int c = 0; c < 256; c++) {
        lower[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    gap_init();
}

/* Room for @p bytes more in the arena (with word_copy()'s slack). */
static bool arena_room(struct na_story_text *tx, size_t bytes) {
    bytes += NA_STORY_TOK_SLACK;
    if (tx->arena_len + bytes <= tx->arena_cap) {
        return true;
    }
    size_t cap = tx->arena_cap ? tx->arena_cap : 1024;
    while (cap < tx->arena_len + bytes) {
        cap *= 2;
    }
    char *p = realloc(tx->arena, cap);
    if (!p) {
        return false;
    }
    tx->arena = p;
    tx->arena_cap = cap;
    return true;
}

/* Room for @p words more words and @p joined more joined forms. */
static bool words_room(struct na_story_text *tx, size_t words, size_t joined) {
    if (tx->w_cnt + words > tx->w_cap) {
        size_t cap = (tx->w_cnt + words) * 2;
        struct na_story_word *w = realloc(tx->w, cap * sizeof(*w));
        if (!w) {
            return false;
        }
        tx->w = w;
        tx->w_cap = cap;
    }
    if (tx->joined_cnt + joined > tx->joined_cap) {
        size_t cap = (tx->joined_cnt + joined) * 2;
        struct na_story_joined *j = realloc(tx->joined, cap * sizeof(*j));
        if (!j) {
            return false;
        }
        tx->joined = j;
        tx->joined_cap = cap;
    }
    return true;
}

/* Where the previous word ends, carried from word to word. */
struct prev {
    size_t end;
    bool have;
};

/* Fill word @p x at p[start..end) but for its fold, len and digits: its
 * place, its case, and (unless @p pv is NULL) what stands between it and
 * the previous word (@p pv, carried forward, so only that gap is read). */
static inline __attribute__((always_inline)) void word_fill(struct na_story_word *x,
                                                            const unsigned char *p,
                                                            size_t start, size_t end,
                                                            struct prev *pv) {
    x->raw = (uint32_t)start;
    x->raw_len = (uint32_t)(end - start);
    unsigned char c0 = p[start];
    unsigned char c1 = end - start > 1 ? p[start + 1] : 0;
    /* ASCII, or Latin-1 upper case (U+00C0..U+00DE). */
    x->cap = (c0 >= 'A' && c0 <= 'Z') ||
             (c0 == 0xc3 && c1 >= 0x80 && c1 <= 0x9e && c1 != 0x97);
    x->acronym = false;
    if (x->cap && c1 >= 'A' && c1 <= 'Z') {
        size_t j = start + 2;
        while (j < end && p[j] >= 'A' && p[j] <= 'Z') {
            j++;
        }
        x->acronym = j == end;
    }
    x->stop = false;
    x->month = 0;
    if (!pv) {
        return; /* the caller read the gap */
    }
    /* Adjacent: only spaces since the previous word. Sentence start: the
     * previous byte that is not a space or an opening quote ends a
     * sentence (the previous word's last byte, a letter or digit, does
     * not). */
    size_t lo = pv->have ? pv->end : 0;
    size_t b = start;
    while (b > lo && p[b - 1] == ' ') {
        b--;
    }
    x->adjacent = pv->have && b == lo;
    x->sent = !pv->have;
    for (; b > lo; b--) {
        unsigned g = gap_cls[p[b - 1]];
        if (g != G_SKIP) {
            x->sent = g == G_END;
            break;
        }
    }
    pv->end = end;
    pv->have = true;
}

/* The parts of the hyphenated word being read: their folds in the arena. */
struct parts {
    size_t cnt; /* parts so far (0: none) */
    bool whole; /* no part truncated, at most 8 */
    size_t total;
    uint32_t off[8];
    uint16_t len[8];
};

static inline __attribute__((always_inline)) void parts_add(struct parts *pt, size_t off,
                                                            size_t n, bool truncated) {
    if (pt->cnt == 0) {
        pt->whole = true;
        pt->total = 0;
    }
    if (pt->cnt >= 8 || truncated) {
        pt->whole = false;
        pt->cnt++;
        return;
    }
    pt->off[pt->cnt] = (uint32_t)off;
    pt->len[pt->cnt] = (uint16_t)n;
    pt->total += n;
    pt->cnt++;
}

/* Close the hyphenated word of @p pt, adding its joined form, plural-folded,
 * as na_rules_tokenize() makes it, after 2 free bytes at arena + *alen, and
 * noting it in @p jd[*jn] when it has three bytes or more. */
static void parts_close(struct parts *pt, char *arena, size_t *alen,
                        struct na_story_joined *jd, size_t *jn) {
    if (pt->cnt >= 2 && pt->whole && pt->total <= NA_RULES_MAX_TERM_BYTES) {
        size_t off = *alen + 2;
        size_t n = 0;
        for (size_t k = 0; k < pt->cnt; k++) {
            memcpy(arena + off + n, arena + pt->off[k], pt->len[k]);
            n += pt->len[k];
        }
        bool y = false;
        size_t sl = na_rules_plural_fold(arena + off, n, &y);
        if (y) {
            arena[off + sl++] = 'y';
        }
        *alen = off + sl;
        if (sl >= 3) {
            jd[(*jn)++] = (struct na_story_joined){(uint32_t)off, (uint32_t)sl};
        }
    }
    pt->cnt = 0;
}

/* The words of s[start..end), a chunk with bytes that are not ASCII, from
 * the rules tokeniser, after the first tx->w_cnt words. */
static na_err_t rules_words(struct na_story_text *tx, const char *s, size_t start,
                            size_t end, struct prev *pv) {
    struct na_rtoks *t = &tx->toks;
    t->cnt = 0;
    t->text_len = 0;
    t->oom = false;
    na_err_t err = na_rules_tokenize(s + start, end - start, t);
    if (err) {
        return err;
    }
    if (!words_room(tx, t->cnt, t->cnt) || !arena_room(tx, t->text_len + 4 * t->cnt)) {
        return NA_ERR_NOMEM;
    }
    for (size_t k = 0; k < t->cnt; k++) {
        const struct na_rtok *r = &t->v[k];
        size_t off = tx->arena_len + 2;
        size_t n = na_rtok_stem(t, r, tx->arena + off);
        tx->arena_len = off + n;
        if (r->pos_end != r->pos) {
            if (n >= 3) {
                tx->joined[tx->joined_cnt++] =
                    (struct na_story_joined){(uint32_t)off, (uint32_t)n};
            }
            continue;
        }
        struct na_story_word *x = &tx->w[tx->w_cnt++];
        word_fill(x, (const unsigned char *)s, start + r->bstart, start + r->bend, pv);
        x->fold = (uint32_t)off;
        x->len = (uint16_t)n;
        x->digits = isdigit((unsigned char)t->text[r->fold_off]) != 0;
    }
    return NA_OK;
}

/* Room for the words of @p len bytes read the fast way (it does not check):
 * words at most one per byte, joined forms one per two; arena: each word's
 * bytes after 2 free, a "y" stem's copy, the joined copies. */
static bool fast_room(struct na_story_text *tx, size_t len) {
    return words_room(tx, len + 1, len / 2 + 1) && arena_room(tx, 8 * len + 64);
}

/* The reader's state, in locals while reading (a store into the arena may
 * not be taken to change them). */
struct rd {
    char *arena;
    size_t alen;
    struct na_story_word *w;
    size_t wn;
    struct na_story_joined *jd;
    size_t jn;
    struct prev pv;
    struct parts pt;
    /* the gap since the previous word, read forward (ascii_run() without
     * chunks): GAP_SPACES and GAP_SENT */
    unsigned gap;
};

/*
 * Read the ASCII words at p[i..) as fast_chunk() does, straight into
 * words, until the end, a byte that is not ASCII, or (with @p chunk) white
 * space; @returns where it stopped. Without @p chunk, white space is one
 * more separator: the text must be all ASCII.
 */
static inline __attribute__((always_inline)) size_t
ascii_run(struct rd *r, const unsigned char *p, size_t len, size_t i, bool chunk) {
    for (;;) {
        unsigned char c = i < len ? cls[p[i]] : S;
        if (!(c & W)) {
            if (chunk && (c & H)) {
                return i;
            }
            if (r->pt.cnt) {
                parts_close(&r->pt, r->arena, &r->alen, r->jd, &r->jn);
            }
            if (i >= len || (chunk && (c & S))) {
                return i;
            }
            if (!chunk) {
                r->gap = gap_next[r->gap][p[i]];
            }
            i++;
            continue;
        }
        size_t start = i;
        size_t off = r->alen + 2;
        i = word_copy(p, len, i, r->arena + off);
        size_t cps = i - start;
        /* longer than a term: the first bytes kept, for prefixes */
        bool truncated = cps > NA_RULES_MAX_TERM_BYTES;
        size_t kept = truncated ? NA_RULES_MAX_TERM_BYTES : cps;
        r->alen = off + kept;
        struct na_story_word *x = &r->w[r->wn++];
        if (chunk) {
            word_fill(x, p, start, i, &r->pv);
        } else {
            word_fill(x, p, start, i, NULL);
            x->adjacent = r->wn > 1 && (r->gap & GAP_SPACES);
            x->sent = (r->gap & GAP_SENT) != 0;
            r->gap = GAP_SPACES; /* the gap after this word */
        }
        x->digits = p[start] <= '9'; /* a letter or digit: a digit starts a figure */
        x->fold = (uint32_t)off;
        x->len = (uint16_t)kept;
        if (!truncated && kept >= 4 && r->arena[off + kept - 1] == 's') {
            bool y = false;
            size_t sl = na_rules_plural_fold(r->arena + off, kept, &y);
            x->len = (uint16_t)sl;
            if (y) {
                /* a copy: the fold stays whole for joining */
                size_t to = r->alen + 2;
                memcpy(r->arena + to, r->arena + off, sl);
                r->arena[to + sl] = 'y';
                r->alen = to + sl + 1;
                x->fold = (uint32_t)to;
                x->len = (uint16_t)(sl + 1);
            }
        }
        if (i >= len) {
            if (r->pt.cnt) {
                parts_add(&r->pt, off, kept, truncated);
            }
            continue; /* the end: closes the word above */
        }
        if (possessive_at(p, len, i)) {
            i += 2;
            r->gap = 0; /* the gap holds "'s" */
            if (r->pt.cnt) {
                parts_add(&r->pt, off, kept, truncated);
                parts_close(&r->pt, r->arena, &r->alen, r->jd, &r->jn);
            }
            continue;
        }
        if (joins_at(p, len, i, cps)) {
            parts_add(&r->pt, off, kept, truncated);
            r->gap = p[i] == '.' ? GAP_SENT : 0; /* the gap holds the "-" or "." */
            i++;
        } else if (r->pt.cnt) {
            parts_add(&r->pt, off, kept, truncated);
            parts_close(&r->pt, r->arena, &r->alen, r->jd, &r->jn);
        }
    }
}

/* @returns true when p[0..len) is all ASCII. */
static bool all_ascii(const unsigned char *p, size_t len) {
    size_t i = 0;
    unsigned hi = 0;
#if defined(__SSE2__)
    __m128i acc = _mm_setzero_si128();
    for (; i + 16 <= len; i += 16) {
        acc = _mm_or_si128(acc, _mm_loadu_si128((const __m128i *)(const void *)(p + i)));
    }
    hi = (unsigned)_mm_movemask_epi8(acc);
#endif
    for (; i < len; i++) {
        hi |= p[i] & 0x80u;
    }
    return hi == 0;
}

na_err_t na_story_words(struct na_story_text *tx, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    pthread_once(&tables_once, tables_init);
    tx->w_cnt = 0;
    tx->joined_cnt = 0;
    tx->arena_len = 0;
    if (len > UINT32_MAX / 8) {
        len = UINT32_MAX / 8;
    }
    if (!fast_room(tx, len)) {
        return NA_ERR_NOMEM;
    }
    struct rd r = {tx->arena, 0,          tx->w,      0,       tx->joined,
                   0,         {0, false}, {.cnt = 0}, GAP_SENT};
    if (all_ascii(p, len)) {
        /* white space ends a chunk as any separator does */
        ascii_run(&r, p, len, 0, false);
        tx->w_cnt = r.wn;
        tx->joined_cnt = r.jn;
        tx->arena_len = r.alen;
        return NA_OK;
    }
    size_t i = 0;
    for (;;) {
        while (i < len && (cls[p[i]] & S)) {
            i++;
        }
        if (i == len) {
            break;
        }
        /* A chunk up to the next white space, undone if a byte is not
         * ASCII. */
        size_t c_start = i, c_wn = r.wn, c_jn = r.jn, c_alen = r.alen;
        struct prev c_pv = r.pv;
        i = ascii_run(&r, p, len, i, true);
        if (i >= len || !(cls[p[i]] & H)) {
            continue;
        }
        /* A byte that is not ASCII: the chunk's words from the rules
         * tokeniser instead. */
        r.pt.cnt = 0;
        r.pv = c_pv;
        while (i < len && !(cls[p[i]] & S)) {
            i++;
        }
        tx->w_cnt = c_wn;
        tx->joined_cnt = c_jn;
        tx->arena_len = c_alen;
        na_err_t err = rules_words(tx, s, c_start, i, &r.pv);
        if (err || !fast_room(tx, len)) {
            return err ? err : NA_ERR_NOMEM;
        }
        r.arena = tx->arena;
        r.w = tx->w;
        r.jd = tx->joined;
        r.wn = tx->w_cnt;
        r.jn = tx->joined_cnt;
        r.alen = tx->arena_len;
    }
    tx->w_cnt = r.wn;
    tx->joined_cnt = r.jn;
    tx->arena_len = r.alen;
    return NA_OK;
}
