/*
 * Topic rules: classifying an article (the scan in rules_scan.c, then the
 * matches with their evidence and snippets) and explaining a verdict.
 * See docs/rules.md.
 */
#include "rules.h"

#include <hs/hs.h>
#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"
#include "rules_match.h"
#include "rules_scan.h"
#include "rules_watch.h"

static const char *const field_names[NA_RULES_FIELDS] = {"title", "summary", "content"};

/* ---- building a match ---- */

static int cmp_ev_strength(const void *a, const void *b) {
    const struct ev *x = a;
    const struct ev *y = b;
    if (x->contrib != y->contrib) {
        return x->contrib > y->contrib ? -1 : 1;
    }
    if (x->field != y->field) {
        return x->field < y->field ? -1 : 1;
    }
    return x->bstart < y->bstart ? -1 : x->bstart > y->bstart;
}

static int cmp_ev_place(const void *a, const void *b) {
    const struct ev *x = a;
    const struct ev *y = b;
    if (x->field != y->field) {
        return x->field < y->field ? -1 : 1;
    }
    if (x->bstart != y->bstart) {
        return x->bstart < y->bstart ? -1 : 1;
    }
    return x->atom < y->atom ? -1 : x->atom > y->atom;
}

NA_RULES_DEFINE_SORT(ev_sort_place, struct ev, cmp_ev_place)
NA_RULES_DEFINE_SORT(ev_sort_strength, struct ev, cmp_ev_strength)

#define ONES8 0x0101010101010101ull

/* The bytes of @p v (eight of text) below 0x20 or above 0x7e: a nonzero
 * high bit in the result's byte for each (and perhaps in bytes above it),
 * none when all eight are printable ASCII. */
static inline uint64_t ascii_odd8(uint64_t v) {
    uint64_t below = (v - ONES8 * 0x20) & ~v; /* < 0x20 */
    uint64_t above = (v + ONES8 * 0x01) | v;  /* >= 0x7f */
    return below | above;
}

/* Are the eight bytes at @p p printable ASCII? */
static inline bool printable8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return !(ascii_odd8(v) & ONES8 * 0x80);
}

/* Has @p v (eight bytes) a byte <= 0x20 (all white space is)? Bytes >= 0x80
 * are not. */
static inline bool blank8(uint64_t v) {
    return ((v - ONES8 * 0x21) & ~v & ONES8 * 0x80) != 0;
}

/* Are the eight bytes at @p p free of white space (and of bytes < 0x20)? */
static inline bool solid8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return !blank8(v);
}

/* Valid UTF-8 copy of text[start..end) with whitespace runs as one space,
 * cut to at most max bytes, appended to @p b with its NUL (no copy of its
 * own when the text is printable ASCII and white space, most evidence: what
 * na_utf8_sanitize() would give is a copy, but for \r, which it makes a
 * space and the loop reads as one either way). @returns where it starts. */
static size_t clean_append(struct na_buf *b, const char *text, size_t start, size_t end,
                           size_t max) {
    size_t off = b->len;
    size_t at = start;
    char *tmp = NULL;
    const char *src = text + start;
    size_t n = end - start;
    bool space = false;
    size_t w = 0;
    for (;;) {
        while (at + 8 <= end && printable8(text + at)) {
            at += 8;
        }
        if (at < end &&
            (((unsigned char)text[at] >= 0x20 && (unsigned char)text[at] < 0x7f) ||
             text[at] == '\n' || text[at] == '\t' || text[at] == '\r')) {
            at++;
            continue;
        }
        break;
    }
    if (at != end) {
        if (!(tmp = na_utf8_sanitize(text + start, end - start))) {
            b->oom = true;
            return off;
        }
        src = tmp;
        n = strlen(tmp);
    }
    na_buf_append(b, src, n);
    free(tmp);
    if (b->oom) {
        return off;
    }
    char *raw = b->data + off;
    for (size_t i = 0; i < n; i++) {
        /* eight bytes with no white space in them, after no white space */
        while (!space && i + 8 <= n && solid8(raw + i)) {
            if (w != i) {
                memmove(raw + w, raw + i, 8);
            }
            w += 8;
            i += 8;
        }
        if (i >= n) {
            break;
        }
        char c = raw[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            space = w > 0;
            continue;
        }
        if (space) {
            raw[w++] = ' ';
            space = false;
        }
        raw[w++] = c;
    }
    b->len = off + na_utf8_cut(raw, w, max);
    na_buf_append(b, "", 1);
    return off;
}

/* clean_append()'s string on its own; NULL on no memory. */
static char *clean_text(const char *text, size_t start, size_t end, size_t max) {
    struct na_buf b;
    na_buf_init(&b);
    clean_append(&b, text, start, end, max);
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
}

static bool is_cont(const char *s, size_t i) {
    return ((unsigned char)s[i] & 0xc0) == 0x80;
}

/* Up to NA_RULES_SNIPPET_BYTES of text around [mstart, mend), cut at word
 * and UTF-8 boundaries, with "…" where the text goes on. */
static char *make_snippet(const char *text, size_t len, size_t mstart, size_t mend) {
    const size_t dots = 3; /* "…" */
    const size_t budget = NA_RULES_SNIPPET_BYTES - 2 * dots;
    size_t start = 0;
    size_t end = len;
    struct na_buf out;

    if (len > NA_RULES_SNIPPET_BYTES) {
        start = mstart > 60 ? mstart - 60 : 0;
        end = start + budget < len ? start + budget : len;
        if (end - start < budget) {
            start = end > budget ? end - budget : 0;
        }
        if (start > 0) {
            for (size_t i = start; i < start + 24 && i < mstart; i++) {
                if (text[i] == ' ' || text[i] == '\n') {
                    start = i + 1;
                    break;
                }
            }
        }
        if (end < len) {
            for (size_t i = end; i > end - 24 && i > mend; i--) {
                if (text[i] == ' ' || text[i] == '\n') {
                    end = i;
                    break;
                }
            }
        }
        while (start < end && is_cont(text, start)) {
            start++;
        }
        while (end > start && end < len && is_cont(text, end)) {
            end--;
        }
    }
    na_buf_init(&out);
    if (start > 0) {
        na_buf_append(&out, "\xe2\x80\xa6", dots);
    }
    clean_append(&out, text, start, end,
                 len > NA_RULES_SNIPPET_BYTES ? budget : NA_RULES_SNIPPET_BYTES);
    if (!out.oom) {
        out.len--; /* the cleaned text's NUL: the "…" goes on after it */
    }
    if (end < len) {
        na_buf_append(&out, "\xe2\x80\xa6", dots);
    }
    return na_buf_steal(&out);
}

static void match_cleanup(struct na_match *m) {
    free(m->topic);
    free(m->parties); /* their strings are in m->strings */
    for (size_t i = 0; !m->strings && i < m->evidence_cnt; i++) {
        free(m->evidence[i].term);
        free(m->evidence[i].matched);
    }
    free(m->strings);
    free(m->evidence);
    free(m->snippet);
    memset(m, 0, sizeof(*m));
}

static na_err_t match_fill(struct scan *s, size_t t, const struct na_rules_verdict *v,
                           size_t mark, struct na_match *m) {
    const struct na_rbuild *b = &s->r->b;
    struct ev *ev = s->ev + mark;
    size_t cnt = s->ev_cnt - mark;
    size_t w = 0;

    memset(m, 0, sizeof(*m));
    m->topic = na_strdup(s->r->topics[t].name);
    m->score = v->score;
    m->threshold = v->threshold;
    if (!m->topic) {
        return NA_ERR_NOMEM;
    }
    /* One entry per (term text, field, offset), strongest first for the cap. */
    ev_sort_place(s, ev, cnt, &s->etmp, &s->etmp_cap);
    for (size_t i = 0; i < cnt; i++) {
        bool dup = false;
        for (size_t k = 0; k < w && !dup; k++) {
            const struct na_ratom *x = &b->atoms[ev[k].atom];
            const struct na_ratom *y = &b->atoms[ev[i].atom];
            dup = ev[k].field == ev[i].field && ev[k].bstart == ev[i].bstart &&
                  x->text_len == y->text_len &&
                  !memcmp(b->strs + x->text_off, b->strs + y->text_off, x->text_len);
        }
        if (!dup) {
            ev[w++] = ev[i];
        }
    }
    cnt = w;
    ev_sort_strength(s, ev, cnt, &s->etmp, &s->etmp_cap);
    /* The snippet comes from the body when it can: the title is shown anyway. */
    const struct ev *best = cnt ? &ev[0] : NULL;
    for (size_t i = 0; i < cnt; i++) {
        if (ev[i].field != NA_RULES_TITLE) {
            best = &ev[i];
            break;
        }
    }
    if (best) {
        m->snippet = make_snippet(s->text[best->field], s->len[best->field], best->bstart,
                                  best->bend);
        if (!m->snippet) {
            return NA_ERR_NOMEM;
        }
    }
    if (cnt > NA_RULES_MAX_EVIDENCE) {
        cnt = NA_RULES_MAX_EVIDENCE;
    }
    ev_sort_place(s, ev, cnt, &s->etmp, &s->etmp_cap);
    if (s->oom) {
        return NA_ERR_NOMEM;
    }
    if (cnt) {
        m->evidence = calloc(cnt, sizeof(*m->evidence));
        if (!m->evidence) {
            return NA_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        const struct na_ratom *atom = &b->atoms[ev[i].atom];
        struct na_evidence *e = &m->evidence[i];
        m->evidence_cnt = i + 1;
        e->term = na_strndup(b->strs + atom->text_off, atom->text_len);
        e->matched = clean_text(s->text[ev[i].field], ev[i].bstart, ev[i].bend,
                                NA_RULES_MATCHED_BYTES);
        e->field = field_names[ev[i].field];
        e->offset = ev[i].bstart;
        if (!e->term || !e->matched) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}

/* ---- watchlist topics ---- */

static double wsaturate(size_t count) {
    if (count > 32) {
        count = 32;
    }
    return 2.0 - ldexp(1.0, 1 - (int)count);
}

/* Sort v[0..n) of elements of @p size bytes (at most 64) by cmp, which
 * orders them totally (so any sort gives the same order): by insertion
 * when few (an article names few parties), else by qsort(). */
static void small_sort(void *v, size_t n, size_t size,
                       int (*cmp)(const void *, const void *)) {
    unsigned char x[64];
    unsigned char *b = v;
    if (n > 16 || size > sizeof(x)) {
        qsort(v, n, size, cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        memcpy(x, b + i * size, size);
        while (j > 0 && cmp(x, b + (j - 1) * size) < 0) {
            memcpy(b + j * size, b + (j - 1) * size, size);
            j--;
        }
        memcpy(b + j * size, x, size);
    }
}

/* A hit with its entry, for grouping by entry. */
struct whit {
    uint32_t entry;
    uint32_t i; /* index in the hits, which are in (field, text) order */
};

static int cmp_whit(const void *a, const void *b) {
    const struct whit *x = a;
    const struct whit *y = b;
    if (x->entry != y->entry) {
        return x->entry < y->entry ? -1 : 1;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sort v[0..n) in cmp_whit()'s order, merging through @p tmp (n
 * elements): an article with many hits (a list's short aliases met in
 * prose) has too many for an insertion sort. */
static void whit_sort(struct whit *v, size_t n, struct whit *tmp) {
    if (n <= 16) {
        small_sort(v, n, sizeof(*v), cmp_whit);
        return;
    }
    struct whit *src = v;
    struct whit *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = n - lo > width ? lo + width : n;
            size_t hi = n - mid > width ? mid + width : n;
            size_t a = lo;
            size_t b = mid;
            size_t k = lo;
            while (a < mid && b < hi) {
                dst[k++] = cmp_whit(&src[b], &src[a]) < 0 ? src[b++] : src[a++];
            }
            while (a < mid) {
                dst[k++] = src[a++];
            }
            while (b < hi) {
                dst[k++] = src[b++];
            }
        }
        struct whit *x = src;
        src = dst;
        dst = x;
    }
    if (src != v) {
        memcpy(v, src, n * sizeof(*v));
    }
}

/* One party: its entry, its first hit, its count and its score. */
struct wparty {
    uint32_t entry;
    uint32_t first; /* hit index */
    uint32_t count;
    uint32_t field_first[NA_RULES_FIELDS]; /* first hit per field, or UINT32_MAX */
    double strength;                       /* best field weight */
};

static int cmp_wparty_place(const void *a, const void *b) {
    const struct wparty *x = a;
    const struct wparty *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* An evidence line: a hit index and its field weight. */
struct wev {
    uint32_t hit;
    double weight;
};

static int cmp_wev_strength(const void *a, const void *b) {
    const struct wev *x = a;
    const struct wev *y = b;
    if (x->weight != y->weight) {
        return x->weight > y->weight ? -1 : 1;
    }
    return x->hit < y->hit ? -1 : x->hit > y->hit;
}

static int cmp_wev_place(const void *a, const void *b) {
    const struct wev *x = a;
    const struct wev *y = b;
    return x->hit < y->hit ? -1 : x->hit > y->hit;
}

/* A watchlist match's strings, gathered in one block (m->strings): a
 * match's evidence lines and parties were two allocations a line and eight
 * a party, more than a tenth of a scan's time at 100,000 parties. Offsets
 * while the block grows; pointers once it is whole (strings_fix()). */
static size_t strings_add(struct na_buf *b, const char *s) {
    size_t off = b->len;
    na_buf_append(b, s ? s : "", strlen(s ? s : "") + 1);
    return off;
}

/*
 * Evaluate watchlist topic t on the scanned article: the parties it names,
 * the score (for each party, as a term: the field weight times f(count) per
 * field), and, when @p m is given and the topic matched, the match with its
 * parties, evidence and snippet.
 */
static na_err_t watch_eval(struct scan *s, size_t t, struct na_rules_verdict *v,
                           struct na_match *m) {
    const struct na_rtopic *topic = &s->r->topics[t];
    const na_watch_t *w = topic->watch;
    struct na_watch_hits hits;
    struct whit *wh = NULL;
    struct wparty *parties = NULL;
    struct wev *ev = NULL;
    size_t parties_cnt = 0;
    size_t ev_cnt = 0;
    na_err_t err = NA_OK;
    struct na_buf strs;                    /* m->strings, while it grows */
    size_t eoff[NA_RULES_MAX_EVIDENCE][2]; /* term, matched */
    size_t poff[NA_RULES_MAX_PARTIES][8];  /* the party's eight strings */

    na_buf_init(&strs);
    memset(v, 0, sizeof(*v));
    v->threshold = topic->threshold;
    na_watch_hits_init(&hits);
    for (int f = 0; f < NA_RULES_FIELDS; f++) {
        if (s->len[f] && (err = na_watch_scan(w, f, s->text[f], s->len[f], &hits))) {
            goto out;
        }
    }
    if (!hits.cnt) {
        goto out;
    }
    /* the four scratch arrays in one allocation (parties and ev hold
     * doubles and come first; wh's fields are 4-byte) */
    parties = malloc(hits.cnt * (sizeof(*parties) + sizeof(*ev) + 2 * sizeof(*wh)));
    if (!parties) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    ev = (struct wev *)(parties + hits.cnt);
    wh = (struct whit *)(ev + hits.cnt);
    for (size_t i = 0; i < hits.cnt; i++) {
        wh[i].entry = na_watch_pattern_entry(w, hits.v[i].pat);
        wh[i].i = (uint32_t)i;
    }
    whit_sort(wh, hits.cnt, wh + hits.cnt);
    double score = 0;
    for (size_t i = 0; i < hits.cnt;) {
        struct wparty *p = &parties[parties_cnt++];
        size_t cnt[NA_RULES_FIELDS] = {0};
        size_t j = i;
        memset(p, 0, sizeof(*p));
        p->entry = wh[i].entry;
        p->first = wh[i].i;
        for (int f = 0; f < NA_RULES_FIELDS; f++) {
            p->field_first[f] = UINT32_MAX;
        }
        for (; j < hits.cnt && wh[j].entry == p->entry; j++) {
            const struct na_watch_hit *h = &hits.v[wh[j].i];
            if (j > i && h->field == hits.v[wh[j - 1].i].field &&
                h->bstart == hits.v[wh[j - 1].i].bstart) {
                continue; /* two names of one entry at one place: one mention */
            }
            if (p->field_first[h->field] == UINT32_MAX) {
                p->field_first[h->field] = wh[j].i;
            }
            cnt[h->field]++;
            p->count++;
        }
        for (int f = 0; f < NA_RULES_FIELDS; f++) {
            if (cnt[f]) {
                score += topic->fw[f] * wsaturate(cnt[f]);
                if (topic->fw[f] > p->strength) {
                    p->strength = topic->fw[f];
                }
                ev[ev_cnt].hit = p->field_first[f];
                ev[ev_cnt].weight = topic->fw[f];
                ev_cnt++;
            }
        }
        i = j;
    }
    v->query = true;
    v->score = round(score * 1e6) / 1e6;
    v->matched = v->score + 1e-9 >= topic->threshold;
    if (!m || !v->matched) {
        goto out;
    }
    memset(m, 0, sizeof(*m));
    m->topic = na_strdup(topic->name);
    m->score = v->score;
    m->threshold = v->threshold;
    if (!m->topic) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* the snippet: around the strongest mention, from the body if it has one */
    small_sort(ev, ev_cnt, sizeof(*ev), cmp_wev_strength);
    const struct na_watch_hit *best = &hits.v[ev[0].hit];
    for (size_t i = 0; i < ev_cnt; i++) {
        if (hits.v[ev[i].hit].field != NA_RULES_TITLE) {
            best = &hits.v[ev[i].hit];
            break;
        }
    }
    m->snippet =
        make_snippet(s->text[best->field], s->len[best->field], best->bstart, best->bend);
    if (!m->snippet) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (ev_cnt > NA_RULES_MAX_EVIDENCE) {
        ev_cnt = NA_RULES_MAX_EVIDENCE;
    }
    small_sort(ev, ev_cnt, sizeof(*ev), cmp_wev_place);
    m->evidence = calloc(ev_cnt, sizeof(*m->evidence));
    if (!m->evidence) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < ev_cnt; i++) {
        const struct na_watch_hit *h = &hits.v[ev[i].hit];
        struct na_evidence *e = &m->evidence[i];
        eoff[i][0] = strings_add(&strs, na_watch_pattern_label(w, h->pat));
        eoff[i][1] = clean_append(&strs, s->text[h->field], h->bstart, h->bend,
                                  NA_RULES_MATCHED_BYTES);
        e->field = field_names[h->field];
        e->offset = h->bstart;
    }
    /* the parties, in order of first mention; the strongest when capped */
    if (parties_cnt > NA_RULES_MAX_PARTIES) {
        /* keep parties named in the title first, then by first mention */
        for (size_t i = 1; i < parties_cnt; i++) {
            struct wparty x = parties[i];
            size_t j = i;
            while (j > 0 && (x.strength > parties[j - 1].strength ||
                             (x.strength == parties[j - 1].strength &&
                              x.first < parties[j - 1].first))) {
                parties[j] = parties[j - 1];
                j--;
            }
            parties[j] = x;
        }
        parties_cnt = NA_RULES_MAX_PARTIES;
    }
    small_sort(parties, parties_cnt, sizeof(*parties), cmp_wparty_place);
    m->parties = calloc(parties_cnt, sizeof(*m->parties));
    if (!m->parties) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < parties_cnt; i++) {
        const struct wparty *p = &parties[i];
        const struct na_watch_hit *h = &hits.v[p->first];
        struct na_party *o = &m->parties[i];
        /* the party's first mention is most often an evidence line (ev is
         * in hit order): its label and cleaned text are there already */
        size_t lo = 0;
        size_t hi = ev_cnt;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ev[mid].hit < p->first) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        bool shared = lo < ev_cnt && ev[lo].hit == p->first;
        poff[i][0] = strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_NAME));
        poff[i][1] =
            shared ? eoff[lo][0] : strings_add(&strs, na_watch_pattern_label(w, h->pat));
        poff[i][2] = strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_SOURCE));
        poff[i][3] =
            strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_PROGRAMS));
        poff[i][4] =
            strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_COUNTRY));
        poff[i][5] = strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_TYPE));
        poff[i][6] = strings_add(&strs, na_watch_entry_str(w, p->entry, NA_WATCH_ID));
        poff[i][7] = shared ? eoff[lo][1]
                            : clean_append(&strs, s->text[h->field], h->bstart, h->bend,
                                           NA_RULES_MATCHED_BYTES);
        o->field = field_names[h->field];
        o->offset = h->bstart;
        o->count = p->count;
    }
    if (strs.oom || !strs.data) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* the block is whole: the pointers into it */
    m->strings = na_buf_steal(&strs);
    for (size_t i = 0; i < ev_cnt; i++) {
        m->evidence[i].term = m->strings + eoff[i][0];
        m->evidence[i].matched = m->strings + eoff[i][1];
    }
    m->evidence_cnt = ev_cnt;
    for (size_t i = 0; i < parties_cnt; i++) {
        struct na_party *o = &m->parties[i];
        char **dst[8] = {&o->name,    &o->alias, &o->source, &o->programs,
                         &o->country, &o->type,  &o->id,     &o->matched};
        for (int k = 0; k < 8; k++) {
            *dst[k] = m->strings + poff[i][k];
        }
    }
    m->parties_cnt = parties_cnt;
out:
    na_buf_cleanup(&strs);
    free(parties); /* and ev, wh and wh's merge space */
    na_watch_hits_cleanup(&hits);
    return err;
}

/* Candidate topics, in rules order: those posted under a hit key. */
static na_err_t candidates(struct scan *s, uint32_t **out, size_t *out_cnt) {
    const na_rules_t *r = s->r;
    size_t words = (r->topics_cnt + 63) / 64;
    uint64_t *seen = NULL;
    uint8_t *sat = NULL;
    uint32_t *c = NULL;
    size_t cnt = 0;
    *out = NULL;
    *out_cnt = 0;
    if (!words || !s->hits_cnt) {
        return NA_OK;
    }
    seen = calloc(words, sizeof(*seen));
    sat = calloc(r->topics_cnt, 1);
    if (!seen || !sat) {
        free(seen);
        free(sat);
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < s->hits_cnt; i++) {
        if (i && s->hits[i].key == s->hits[i - 1].key) {
            continue;
        }
        const struct na_rkey *k = &r->b.keys[s->hits[i].key];
        for (uint32_t p = 0; p < k->post_cnt; p++) {
            uint32_t post = r->posts[k->post_first + p];
            uint32_t t = NA_RULES_POST_TOPIC(post);
            uint8_t g = (uint8_t)(1u << NA_RULES_POST_GROUP(post));
            if (!(sat[t] & g)) {
                sat[t] |= g;
                if (sat[t] == r->req[t]) {
                    seen[t >> 6] |= (uint64_t)1 << (t & 63);
                    cnt++;
                }
            }
        }
    }
    if (cnt) {
        c = malloc(cnt * sizeof(*c));
        if (!c) {
            free(seen);
            free(sat);
            return NA_ERR_NOMEM;
        }
        cnt = 0;
        for (size_t w = 0; w < words; w++) {
            uint64_t bits = seen[w];
            while (bits) {
                c[cnt++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
                bits &= bits - 1;
            }
        }
    }
    free(seen);
    free(sat);
    *out = c;
    *out_cnt = cnt;
    return NA_OK;
}

na_err_t na_rules_classify(const na_rules_t *rules, const struct na_article *a,
                           struct na_classification *out) {
    struct scan s;
    uint32_t *cand = NULL;
    size_t cand_cnt = 0;
    size_t cap = 0;
    na_err_t err;

    memset(out, 0, sizeof(*out));
    na_rscan_init(&s, rules);
    if ((err = na_rscan_article(&s, a)) || (err = candidates(&s, &cand, &cand_cnt))) {
        goto out;
    }
    /* query topics that are candidates, and every watchlist topic, in order */
    for (size_t i = 0, wi = 0; i < cand_cnt || wi < rules->watch_cnt;) {
        struct na_rules_verdict v;
        size_t mark = s.ev_cnt;
        if (wi < rules->watch_cnt &&
            (i == cand_cnt || rules->watch_topics[wi] < cand[i])) {
            struct na_match wm;
            memset(&wm, 0, sizeof(wm));
            err = watch_eval(&s, rules->watch_topics[wi++], &v, &wm);
            if (!err && v.matched) {
                if (out->matches_cnt == cap) {
                    size_t cap2 = cap ? cap * 2 : 4;
                    struct na_match *mm = realloc(out->matches, cap2 * sizeof(*mm));
                    if (!mm) {
                        err = NA_ERR_NOMEM;
                    } else {
                        out->matches = mm;
                        cap = cap2;
                    }
                }
                if (!err) {
                    out->matches[out->matches_cnt++] = wm;
                    memset(&wm, 0, sizeof(wm));
                }
            }
            match_cleanup(&wm);
            if (err) {
                goto out;
            }
            continue;
        }
        na_rscan_topic_eval(&s, cand[i], &v);
        if (s.oom) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        if (v.matched) {
            if (out->matches_cnt == cap) {
                size_t cap2 = cap ? cap * 2 : 4;
                struct na_match *m = realloc(out->matches, cap2 * sizeof(*m));
                if (!m) {
                    err = NA_ERR_NOMEM;
                    goto out;
                }
                out->matches = m;
                cap = cap2;
            }
            err = match_fill(&s, cand[i], &v, mark, &out->matches[out->matches_cnt]);
            out->matches_cnt++;
            if (err) {
                goto out;
            }
        }
        s.ev_cnt = mark;
        i++;
    }
out:
    free(cand);
    na_rscan_cleanup(&s);
    if (err) {
        na_classification_cleanup(out);
    }
    return err;
}

na_err_t na_rules_explain(const na_rules_t *rules, const struct na_article *a,
                          size_t topic, struct na_rules_verdict *v) {
    struct scan s;
    na_err_t err;
    memset(v, 0, sizeof(*v));
    if (topic >= rules->topics_cnt) {
        return NA_ERR_NOT_FOUND;
    }
    na_rscan_init(&s, rules);
    err = na_rscan_article(&s, a);
    if (!err && rules->topics[topic].watch) {
        err = watch_eval(&s, topic, v, NULL);
    } else if (!err) {
        na_rscan_topic_eval(&s, topic, v);
        if (s.oom) {
            err = NA_ERR_NOMEM;
        }
    }
    na_rscan_cleanup(&s);
    return err;
}

json_t *na_match_parties_json(const struct na_match *m) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < m->parties_cnt; i++) {
        const struct na_party *p = &m->parties[i];
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "name", p->name,
            "alias", p->alias, "source", p->source, "programs", p->programs, "country",
            p->country, "type", p->type, "id", p->id, "matched", p->matched, "field",
            p->field, "offset", (json_int_t)p->offset, "count", (json_int_t)p->count);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

void na_classification_cleanup(struct na_classification *c) {
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->matches_cnt; i++) {
        match_cleanup(&c->matches[i]);
    }
    free(c->matches);
    memset(c, 0, sizeof(*c));
}
