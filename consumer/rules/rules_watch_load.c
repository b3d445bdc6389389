/*
 * Watchlist topics: reading a list (the Consolidated Screening List's CSV,
 * its JSON export, or one name per line), turning its rows into entries and
 * their names and aliases into trie paths, and freezing the result into the
 * tables the scan reads (na_watch_load()). See rules_watch.c for how a list
 * is compiled, rules_watch.h for what matches and docs/rules.md,
 * "Watchlists".
 */
#include "rules_watch.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/util.h"
#include "rules_match.h"
#include "rules_query.h"
#include "rules_text.h"
#include "rules_watch_internal.h"

/* Legal forms that a name may end with and the text may leave out, as
 * written; each is tokenised like a name at load. */
static const char *const legal_forms[] = {
    "co",       "company",      "corp",         "corporation", "inc",      "incorporated",
    "ltd",      "limited",      "llc",          "l.l.c.",      "llp",      "lp",
    "plc",      "gmbh",         "ag",           "kg",          "se",       "sa",
    "s.a.",     "sarl",         "sas",          "srl",         "spa",      "s.p.a.",
    "bv",       "b.v.",         "nv",           "n.v.",        "pte",      "pvt",
    "pty",      "jsc",          "ojsc",         "cjsc",        "pjsc",     "oao",
    "ooo",      "zao",          "pao",          "fze",         "fzco",     "fzc",
    "kk",       "sdn bhd",      "bhd",          "oy",          "ab",       "as",
    "lda",      "ооо",          "оао",          "зао",         "пао",      "ао",
    "有限公司", "股份有限公司", "有限责任公司", "公司",        "株式会社", "有限會社",
};
_Static_assert(sizeof(legal_forms) / sizeof(legal_forms[0]) == NA_WATCH_LEGAL_CNT,
               "NA_WATCH_LEGAL_CNT in rules_watch_internal.h counts legal_forms[]");

/* ---- loading ---- */

struct wload {
    na_watch_t *w;
    const char *path;
    const char *topic;
    unsigned exact_below;
    struct na_rtoks toks;
    uint64_t *ends; /* (node << 32 | pattern) pairs */
    size_t ends_cnt, ends_cap;
    na_metric_t *m_rejected;
    bool oom;
};

/* A message about line @p line: kept and logged (the first
 * NA_WATCH_MAX_MESSAGES), and counted as a rejected row when @p row. */
static void note(struct wload *ld, size_t line, bool row, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void note(struct wload *ld, size_t line, bool row, const char *fmt, ...) {
    na_watch_t *w = ld->w;
    char msg[512];
    char full[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (row) {
        w->rejected++;
        na_metric_add(ld->m_rejected, 1);
    }
    if (w->msgs_cnt >= NA_WATCH_MAX_MESSAGES) {
        return;
    }
    snprintf(full, sizeof(full), "%s:%zu: %s", ld->path, line, msg);
    char **m = realloc(w->msgs, (w->msgs_cnt + 1) * sizeof(*m));
    if (!m) {
        ld->oom = true;
        return;
    }
    w->msgs = m;
    /* valid UTF-8 whatever the list held: parser texts quote its bytes and
     * may cut a character ("near '...'") */
    w->msgs[w->msgs_cnt] = na_utf8_sanitize(full, strlen(full));
    if (!w->msgs[w->msgs_cnt]) {
        ld->oom = true;
        return;
    }
    w->msgs_cnt++;
    char *clean = na_utf8_sanitize(msg, strlen(msg));
    na_log(NA_LOG_WARN, "rules",
           row ? "watchlist_row_rejected" : "watchlist_alias_skipped",
           "topic=%s file=%s line=%zu reason=%s", na_log_q(ld->topic), na_log_q(ld->path),
           line, na_log_q(clean ? clean : ""));
    free(clean);
}

/* Code points of s[0..len) (valid UTF-8). */
static size_t utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    }
    return n;
}

/* The parts of a tokenised name: the tokens that are one word each, in
 * position order (the tokeniser emits them so). */
static size_t name_parts(const struct na_rtoks *t, uint32_t *idx, size_t max,
                         bool *truncated) {
    size_t n = 0;
    *truncated = false;
    for (size_t i = 0; i < t->cnt; i++) {
        const struct na_rtok *k = &t->v[i];
        if (k->pos != k->pos_end) {
            continue;
        }
        if (k->truncated || k->fold_len > NA_RULES_MAX_TERM_BYTES) {
            *truncated = true;
        }
        if (n < max) {
            idx[n] = (uint32_t)i;
        }
        n++;
    }
    return n;
}

static na_err_t pat_insert(struct wload *ld, const uint32_t *words, size_t cnt,
                           uint32_t pat) {
    na_watch_t *w = ld->w;
    uint32_t node = 0;
    for (size_t i = 0; i < cnt; i++) {
        node = na_watch_edge_add(w, node, words[i]);
        if (node == NA_WNONE) {
            return NA_ERR_NOMEM;
        }
    }
    uint64_t *e = na_watch_grow(ld->ends, &ld->ends_cap, ld->ends_cnt + 1, sizeof(*e));
    if (!e) {
        return NA_ERR_NOMEM;
    }
    ld->ends = e;
    ld->ends[ld->ends_cnt++] = (uint64_t)node << 32 | pat;
    return NA_OK;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *len) {
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1])) {
        (*len)--;
    }
}

/* Does the folded part sequence parts[from..cnt) of the tokens equal legal
 * form i? */
static bool tail_is_legal(const na_watch_t *w, const struct na_rtoks *t,
                          const uint32_t *parts, size_t cnt, size_t i) {
    size_t n = w->legal_len[i];
    if (!n || n >= cnt) {
        return false;
    }
    for (size_t k = 0; k < n; k++) {
        const struct na_rtok *tok = &t->v[parts[cnt - n + k]];
        const struct na_wtok *lw =
            &w->toks[w->legal_words[i * NA_WATCH_LEGAL_MAX_WORDS + k]];
        if (tok->fold_len != lw->len ||
            memcmp(t->text + tok->fold_off, w->pool + lw->off, lw->len)) {
            return false;
        }
    }
    return true;
}

/*
 * Compile one name or alias s[0..len) of entry @p entry. @p label is the
 * pool offset of the text to report (the name as listed; for the swapped
 * form of "SURNAME, Given", the listed form). @returns NA_OK with *why set
 * (non-empty) when the name cannot be used, NA_ERR_NOMEM.
 */
static na_err_t add_name(struct wload *ld, uint32_t entry, const char *s, size_t len,
                         bool individual, uint32_t label, char *why, size_t why_size) {
    na_watch_t *w = ld->w;
    struct na_rtoks *t = &ld->toks;
    uint32_t parts[NA_WATCH_MAX_WORDS];
    uint32_t words[NA_WATCH_MAX_WORDS];
    bool truncated;
    na_err_t err;

    why[0] = '\0';
    trim(&s, &len);
    if (!len) {
        snprintf(why, why_size, "empty name");
        return NA_OK;
    }
    if (len > NA_WATCH_MAX_NAME_BYTES) {
        snprintf(why, why_size, "name longer than %u bytes", NA_WATCH_MAX_NAME_BYTES);
        return NA_OK;
    }
    t->cnt = 0;
    t->text_len = 0;
    if (na_rules_tokenize(s, len, t)) {
        return NA_ERR_NOMEM;
    }
    size_t cnt = name_parts(t, parts, NA_WATCH_MAX_WORDS, &truncated);
    if (!cnt) {
        snprintf(why, why_size, "name \"%.*s\" has no letters or digits",
                 (int)na_utf8_cut(s, len, 80), s);
        return NA_OK;
    }
    if (cnt > NA_WATCH_MAX_WORDS) {
        snprintf(why, why_size, "name of more than %u words", NA_WATCH_MAX_WORDS);
        return NA_OK;
    }
    if (truncated) {
        snprintf(why, why_size, "name with a word longer than %u bytes",
                 NA_RULES_MAX_TERM_BYTES);
        return NA_OK;
    }
    if (!label) {
        label = na_watch_pool_add(w, s, len);
        if (!label) {
            return NA_ERR_NOMEM;
        }
    }
    /* Take legal forms off the end, keeping one word at least. */
    size_t core = cnt;
    for (bool again = true; again;) {
        again = false;
        for (size_t i = 0; i < NA_WATCH_LEGAL_CNT; i++) {
            if (tail_is_legal(w, t, parts, core, i)) {
                core -= w->legal_len[i];
                again = true;
                break;
            }
        }
    }
    size_t letters = 0;
    for (size_t i = 0; i < core; i++) {
        const struct na_rtok *k = &t->v[parts[i]];
        letters += utf8_chars(t->text + k->fold_off, k->fold_len);
    }
    bool exact = letters < ld->exact_below;

    struct na_wpat p = {entry, label, 0, 0};
    if (exact) {
        p.exact_first = (uint32_t)w->spans_cnt;
        p.exact_cnt = (uint16_t)core;
        struct na_wspan *sp =
            na_watch_grow(w->spans, &w->spans_cap, w->spans_cnt + core + 1, sizeof(*sp));
        if (!sp) {
            return NA_ERR_NOMEM;
        }
        w->spans = sp;
        for (size_t i = 0; i < core; i++) {
            const struct na_rtok *k = &t->v[parts[i]];
            sp[w->spans_cnt].off =
                na_watch_pool_add(w, s + k->bstart, k->bend - k->bstart);
            sp[w->spans_cnt].len = k->bend - k->bstart;
            if (!sp[w->spans_cnt].off) {
                return NA_ERR_NOMEM;
            }
            w->spans_cnt++;
        }
        /* Symbols written onto the name's end are part of its spelling:
         * "Face++" is not "Face", "C#" not "C". Punctuation that ends a
         * phrase (. , ; : ! ? quotes, brackets) is not. */
        size_t a = t->v[parts[core - 1]].bend;
        size_t e = a;
        while (e < len && !is_space(s[e])) {
            e++;
        }
        while (e > a && strchr(".,;:!?)]}\"'", s[e - 1])) {
            e--;
        }
        sp[w->spans_cnt].len = (uint32_t)(e - a);
        sp[w->spans_cnt].off = e > a ? na_watch_pool_add(w, s + a, e - a) : 0;
        if (e > a && !sp[w->spans_cnt].off) {
            return NA_ERR_NOMEM;
        }
        w->spans_cnt++;
    }
    for (size_t i = 0; i < core; i++) {
        const struct na_rtok *k = &t->v[parts[i]];
        words[i] = na_watch_dict_add(w, t->text + k->fold_off, k->fold_len);
        if (words[i] == NA_WNONE) {
            return NA_ERR_NOMEM;
        }
    }
    struct na_wpat *pp =
        na_watch_grow(w->pats, &w->pats_cap, w->pats_cnt + 2, sizeof(*pp));
    if (!pp) {
        return NA_ERR_NOMEM;
    }
    w->pats = pp;
    uint32_t pat = (uint32_t)w->pats_cnt++;
    w->pats[pat] = p;
    if ((err = pat_insert(ld, words, core, pat))) {
        return err;
    }
    /* The joined form of hyphenated and dotted words: "Al-Noor" as "alnoor". */
    if (!exact) {
        uint32_t last = t->v[parts[core - 1]].pos;
        uint32_t first = t->v[parts[0]].pos;
        size_t n = 0;
        bool joined = false;
        uint32_t pos = first;
        size_t pi = 0;
        while (pos <= last && n < NA_WATCH_MAX_WORDS) {
            const struct na_rtok *best = NULL;
            for (size_t i = 0; i < t->cnt; i++) {
                const struct na_rtok *k = &t->v[i];
                if (k->pos == pos && k->pos_end > k->pos && k->pos_end <= last &&
                    !k->truncated && (!best || k->pos_end > best->pos_end)) {
                    best = k;
                }
            }
            if (!best) {
                while (pi < core && t->v[parts[pi]].pos < pos) {
                    pi++;
                }
                best = &t->v[parts[pi]];
            } else {
                joined = true;
            }
            words[n] = na_watch_dict_add(w, t->text + best->fold_off, best->fold_len);
            if (words[n] == NA_WNONE) {
                return NA_ERR_NOMEM;
            }
            n++;
            pos = best->pos_end + 1;
        }
        if (joined) {
            pp = na_watch_grow(w->pats, &w->pats_cap, w->pats_cnt + 1, sizeof(*pp));
            if (!pp) {
                return NA_ERR_NOMEM;
            }
            w->pats = pp;
            pat = (uint32_t)w->pats_cnt++;
            w->pats[pat] = p;
            if ((err = pat_insert(ld, words, n, pat))) {
                return err;
            }
        }
    }
    /* "SURNAME, Given" of an individual also as "Given SURNAME". */
    const char *comma = individual ? memchr(s, ',', len) : NULL;
    if (comma && !memchr(comma + 1, ',', len - (size_t)(comma + 1 - s))) {
        char swapped[NA_WATCH_MAX_NAME_BYTES + 2];
        const char *given = comma + 1;
        size_t given_len = len - (size_t)(given - s);
        size_t sur_len = (size_t)(comma - s);
        trim(&given, &given_len);
        if (given_len && sur_len) {
            memcpy(swapped, given, given_len);
            swapped[given_len] = ' ';
            memcpy(swapped + given_len + 1, s, sur_len);
            char why2[256];
            if ((err = add_name(ld, entry, swapped, given_len + 1 + sur_len, false, label,
                                why2, sizeof(why2)))) {
                return err;
            }
            /* and, listed with middle names or a patronymic, as news
             * usually writes it: "Oleg Vladimirovich" -> "Oleg DERIPASKA" */
            const char *sp1 = given;
            while (sp1 < given + given_len && !is_space(*sp1)) {
                sp1++;
            }
            if (sp1 < given + given_len) {
                size_t first_len = (size_t)(sp1 - given);
                memcpy(swapped, given, first_len);
                swapped[first_len] = ' ';
                memcpy(swapped + first_len + 1, s, sur_len);
                if ((err = add_name(ld, entry, swapped, first_len + 1 + sur_len, false,
                                    label, why2, sizeof(why2)))) {
                    return err;
                }
            }
        }
    }
    return NA_OK;
}

/* Would "A, B" be "SURNAME, Given" in a plain names list: one comma, and
 * what follows it is not a legal form ("Acme, Inc.")? */
static bool names_individual(struct wload *ld, const char *s, size_t len) {
    const char *comma = memchr(s, ',', len);
    if (!comma || memchr(comma + 1, ',', len - (size_t)(comma + 1 - s))) {
        return false;
    }
    struct na_rtoks *t = &ld->toks;
    uint32_t parts[NA_WATCH_MAX_WORDS + 1];
    bool truncated;
    t->cnt = 0;
    t->text_len = 0;
    if (na_rules_tokenize(comma + 1, len - (size_t)(comma + 1 - s), t)) {
        ld->oom = true;
        return false;
    }
    size_t cnt = name_parts(t, parts, NA_WATCH_MAX_WORDS, &truncated);
    if (!cnt || cnt > NA_WATCH_MAX_WORDS) {
        return false;
    }
    /* legal form = the whole of it: add a dummy word in front */
    for (size_t i = 0; i < NA_WATCH_LEGAL_CNT; i++) {
        size_t n = ld->w->legal_len[i];
        if (n == cnt) {
            uint32_t p2[NA_WATCH_MAX_WORDS + 1];
            p2[0] = parts[0];
            memcpy(p2 + 1, parts, cnt * sizeof(*parts));
            if (tail_is_legal(ld->w, t, p2, cnt + 1, i)) {
                return false;
            }
        }
    }
    return true;
}

/*
 * A "; " list of distinct values (an entry's programs, countries or
 * aliases) and a hash set of the parts it holds, so that adding a value
 * costs its length, not the list's: a field of n values is read in O(n).
 * A value is left out when it equals a part of the list, the text between
 * two "; " (a value holding "; " is added whole and its parts count).
 * Once the list is over max_bytes nothing more is added.
 */
struct vlist {
    struct na_buf buf; /* the list, NUL-terminated once a value is in */
    struct vslot *slots;
    size_t slots_cap; /* a power of two, or 0 */
    size_t cnt;       /* parts in the set */
    uint32_t gen;     /* a slot of another generation is empty */
    size_t max_bytes; /* NA_WATCH_MAX_FIELD_BYTES, or SIZE_MAX: no cap */
};

struct vslot {
    uint64_t hash;
    size_t off, len; /* the part: buf.data[off..off+len) */
    uint32_t gen;
};

static void vlist_init(struct vlist *l, size_t max_bytes) {
    memset(l, 0, sizeof(*l));
    na_buf_init(&l->buf);
    l->gen = 1;
    l->max_bytes = max_bytes;
}

static void vlist_cleanup(struct vlist *l) {
    na_buf_cleanup(&l->buf);
    free(l->slots);
}

/* Empty the list, keeping its memory: O(1). */
static void vlist_reset(struct vlist *l) {
    l->buf.len = 0;
    if (l->buf.data) {
        l->buf.data[0] = '\0';
    }
    l->cnt = 0;
    if (++l->gen == 0) {
        if (l->slots) {
            memset(l->slots, 0, l->slots_cap * sizeof(*l->slots));
        }
        l->gen = 1;
    }
}

static bool vlist_full(const struct vlist *l) {
    return l->buf.len > l->max_bytes;
}

static uint64_t vlist_hash(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    }
    return h;
}

/* The slot of part s[0..len) of hash h: its own, or the empty one where it
 * would go. */
static struct vslot *vlist_slot(const struct vlist *l, const char *s, size_t len,
                                uint64_t h) {
    size_t mask = l->slots_cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct vslot *v = &l->slots[i];
        if (v->gen != l->gen ||
            (v->hash == h && v->len == len && !memcmp(l->buf.data + v->off, s, len))) {
            return v;
        }
    }
}

/* Put the part buf.data[off..off+len) in the set (not already there). */
static na_err_t vlist_put(struct vlist *l, size_t off, size_t len) {
    if (2 * (l->cnt + 1) > l->slots_cap) {
        size_t cap = l->slots_cap ? 2 * l->slots_cap : 16;
        struct vslot *old = l->slots;
        size_t old_cap = l->slots_cap;
        l->slots = calloc(cap, sizeof(*l->slots));
        if (!l->slots) {
            l->slots = old;
            return NA_ERR_NOMEM;
        }
        l->slots_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].gen == l->gen) {
                struct vslot *v =
                    vlist_slot(l, l->buf.data + old[i].off, old[i].len, old[i].hash);
                *v = old[i];
            }
        }
        free(old);
    }
    const char *s = l->buf.data + off;
    uint64_t h = vlist_hash(s, len);
    struct vslot *v = vlist_slot(l, s, len, h);
    if (v->gen != l->gen) {
        v->hash = h;
        v->off = off;
        v->len = len;
        v->gen = l->gen;
        l->cnt++;
    }
    return NA_OK;
}

/* The first "; " in [p, end), or NULL. */
static const char *find_sep(const char *p, const char *end) {
    for (const char *q = p; q + 1 < end; q++) {
        q = memchr(q, ';', (size_t)(end - 1 - q));
        if (!q) {
            return NULL;
        }
        if (q[1] == ' ') {
            return q;
        }
    }
    return NULL;
}

/* Append the value v[0..len) (trimmed) unless the list holds it or is full. */
static na_err_t list_add(struct vlist *l, const char *v, size_t len) {
    trim(&v, &len);
    if (!len || vlist_full(l)) {
        return NA_OK;
    }
    if (l->cnt && vlist_slot(l, v, len, vlist_hash(v, len))->gen == l->gen) {
        return NA_OK;
    }
    if (l->buf.len) {
        na_buf_puts(&l->buf, "; ");
    }
    size_t off = l->buf.len;
    na_buf_append(&l->buf, v, len);
    if (l->buf.oom) {
        return NA_ERR_NOMEM;
    }
    /* its parts: the list reads "a; b" as two */
    for (size_t i = off, end = off + len; i < end;) {
        const char *p = l->buf.data + i;
        const char *e = find_sep(p, l->buf.data + end);
        size_t n = e ? (size_t)(e - p) : end - i;
        na_err_t err;
        if (n && (err = vlist_put(l, i, n))) {
            return err;
        }
        i += n + (e ? 2 : 0);
    }
    return NA_OK;
}

/* One entry in the published fields, strings as read (valid UTF-8). */
struct wrow {
    size_t line;
    const char *name;
    size_t name_len;
    const char *const *aliases; /* alias texts */
    const size_t *alias_lens;
    size_t aliases_cnt;
    const char *col[NA_WATCH_COLS]; /* NAME unused; NUL-terminated or NULL */
    bool individual;
};

static na_err_t add_entry(struct wload *ld, const struct wrow *row) {
    na_watch_t *w = ld->w;
    char why[256];
    na_err_t err;
    if (w->entries_cnt >= NA_WATCH_MAX_ENTRIES) {
        note(ld, row->line, true, "more than %u entries", NA_WATCH_MAX_ENTRIES);
        return NA_OK;
    }
    struct na_wentry *e =
        na_watch_grow(w->entries, &w->entries_cap, w->entries_cnt + 1, sizeof(*e));
    if (!e) {
        return NA_ERR_NOMEM;
    }
    w->entries = e;
    uint32_t id = (uint32_t)w->entries_cnt;
    size_t pats0 = w->pats_cnt;
    size_t ends0 = ld->ends_cnt;
    if ((err = add_name(ld, id, row->name, row->name_len, row->individual, 0, why,
                        sizeof(why)))) {
        return err;
    }
    if (why[0]) {
        note(ld, row->line, true, "%s", why);
        return NA_OK;
    }
    struct na_wentry *ent = &w->entries[id];
    memset(ent, 0, sizeof(*ent));
    ent->col[NA_WATCH_NAME] = w->pats[pats0].label;
    for (int c = 1; c < NA_WATCH_COLS; c++) {
        const char *v = row->col[c];
        if (v && *v && !(ent->col[c] = na_watch_pool_add(w, v, strlen(v)))) {
            return NA_ERR_NOMEM;
        }
    }
    w->entries_cnt++;
    for (size_t i = 0; i < row->aliases_cnt; i++) {
        if (i == NA_WATCH_MAX_ALIASES) {
            note(ld, row->line, false, "more than %u aliases: the rest are skipped",
                 NA_WATCH_MAX_ALIASES);
            break;
        }
        const char *a = row->aliases[i];
        size_t alen = row->alias_lens[i];
        trim(&a, &alen);
        if (!alen) {
            continue; /* "a; ; b": nothing listed there */
        }
        if ((err = add_name(ld, id, a, alen, row->individual, 0, why, sizeof(why)))) {
            return err;
        }
        if (why[0]) {
            note(ld, row->line, false, "alias skipped: %s", why);
        }
    }
    (void)ends0;
    return ld->oom ? NA_ERR_NOMEM : NA_OK;
}

/* ---- CSV (RFC 4180: quotes, "" escapes, line breaks inside quotes) ---- */

struct csv {
    const char *s;
    size_t len;
    size_t i;
    size_t line; /* line of s[i] */
    struct na_buf field;
    size_t *starts; /* field starts in .field (NUL-separated) */
    size_t fields_cnt, fields_cap;
    size_t rec_start; /* offset of the last record read */
    size_t span_line; /* the record's first quoted field over a line end: the
                       * line of its opening quote (0: none) */
    size_t span_end;  /* and of its closing quote */
};

/*
 * After a malformed record that ran over line ends inside quotes: go on at
 * the line after its start (@p line). Its opening quote may be a stray one
 * that the next quote of the file closed, so the lines it took can be rows
 * of their own.
 */
static void csv_resume(struct csv *c, size_t line) {
    const char *nl = memchr(c->s + c->rec_start, '\n', c->len - c->rec_start);
    c->i = nl ? (size_t)(nl - c->s) + 1 : c->len;
    c->line = line + 1;
}

/* Append to why what happened to a malformed record that ran over line ends
 * inside quotes, and resume at the line after its start. */
static void csv_reject_spanning(struct csv *c, size_t line, char *why, size_t why_size) {
    size_t n = strlen(why);
    snprintf(why + n, why_size - n,
             " (the quote opened on line %zu closes on line %zu: an unmatched quote? "
             "only this row is skipped; reading goes on at line %zu)",
             c->span_line, c->span_end, line + 1);
    csv_resume(c, line);
}

/*
 * Read one record. @returns 1 with the record's fields, 0 at the end, -1
 * for a malformed record (why set; the reader stands at the next line, or,
 * when the record ran over line ends inside quotes, at the line after its
 * start). *line gets the record's first line.
 */
static int csv_record(struct csv *c, size_t *line, char *why, size_t why_size) {
    size_t too_long = 0;
    why[0] = '\0';
    c->field.len = 0;
    c->fields_cnt = 0;
    c->span_line = 0;
    c->span_end = 0;
    /* skip empty lines */
    while (c->i < c->len && (c->s[c->i] == '\n' || c->s[c->i] == '\r')) {
        c->line += c->s[c->i] == '\n';
        c->i++;
    }
    if (c->i >= c->len) {
        return 0;
    }
    *line = c->line;
    c->rec_start = c->i;
    for (;;) {
        size_t *st =
            na_watch_grow(c->starts, &c->fields_cap, c->fields_cnt + 1, sizeof(*st));
        if (!st) {
            c->field.oom = true;
            return -1;
        }
        c->starts = st;
        c->starts[c->fields_cnt++] = c->field.len;
        size_t flen = 0;
        if (c->i < c->len && c->s[c->i] == '"') {
            size_t qline = c->line;
            c->i++;
            for (;;) {
                if (c->i >= c->len) {
                    snprintf(why, why_size,
                             "quoted field of line %zu is not closed before the end of "
                             "the file (row skipped; reading goes on at the next line)",
                             qline);
                    csv_resume(c, *line);
                    return -1;
                }
                char ch = c->s[c->i];
                if (ch == '"') {
                    if (c->i + 1 < c->len && c->s[c->i + 1] == '"') {
                        c->i += 2;
                        if (flen++ < NA_WATCH_MAX_FIELD_BYTES) {
                            na_buf_append(&c->field, "\"", 1);
                        }
                        continue;
                    }
                    c->i++;
                    if (c->span_line && !c->span_end) {
                        c->span_end = c->line;
                    }
                    break;
                }
                if (ch == '\n') {
                    c->line++;
                }
                /* copy the run up to the next quote at once */
                const char *q = memchr(c->s + c->i, '"', c->len - c->i);
                size_t run = q ? (size_t)(q - (c->s + c->i)) : c->len - c->i;
                for (size_t k = 1; k < run; k++) {
                    c->line += c->s[c->i + k] == '\n';
                }
                if (!c->span_line && c->line != qline) {
                    c->span_line = qline;
                }
                if (flen < NA_WATCH_MAX_FIELD_BYTES) {
                    size_t take = run < NA_WATCH_MAX_FIELD_BYTES - flen
                                      ? run
                                      : NA_WATCH_MAX_FIELD_BYTES - flen;
                    na_buf_append(&c->field, c->s + c->i, take);
                }
                flen += run;
                c->i += run;
            }
            if (c->i < c->len && c->s[c->i] != ',' && c->s[c->i] != '\n' &&
                c->s[c->i] != '\r') {
                snprintf(why, why_size, "text after the closing quote of field %zu",
                         c->fields_cnt);
                if (c->span_line) {
                    csv_reject_spanning(c, *line, why, why_size);
                    return -1;
                }
                while (c->i < c->len && c->s[c->i] != '\n') {
                    c->i++;
                }
                return -1;
            }
        } else {
            size_t a = c->i;
            while (c->i < c->len && c->s[c->i] != ',' && c->s[c->i] != '\n' &&
                   c->s[c->i] != '\r') {
                c->i++;
            }
            flen = c->i - a;
            if (memchr(c->s + a, '"', flen)) {
                snprintf(why, why_size, "a quote inside unquoted field %zu",
                         c->fields_cnt);
                if (c->span_line) {
                    csv_reject_spanning(c, *line, why, why_size);
                    return -1;
                }
                while (c->i < c->len && c->s[c->i] != '\n') {
                    c->i++;
                }
                return -1;
            }
            na_buf_append(&c->field, c->s + a,
                          flen < NA_WATCH_MAX_FIELD_BYTES ? flen
                                                          : NA_WATCH_MAX_FIELD_BYTES);
        }
        na_buf_append(&c->field, "", 1); /* NUL separator */
        if (flen > NA_WATCH_MAX_FIELD_BYTES && !too_long) {
            too_long = c->fields_cnt;
        }
        if (c->field.oom) {
            return -1;
        }
        if (c->i < c->len && c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        /* end of record */
        if (c->i < c->len && c->s[c->i] == '\r') {
            c->i++;
        }
        if (c->i < c->len && c->s[c->i] == '\n') {
            c->i++;
            c->line++;
        }
        break;
    }
    if (too_long) {
        snprintf(why, why_size, "field %zu is longer than %u bytes", too_long,
                 NA_WATCH_MAX_FIELD_BYTES);
        if (c->span_line) {
            csv_reject_spanning(c, *line, why, why_size);
        }
        return -1;
    }
    return 1;
}

static const char *csv_field(const struct csv *c, size_t i) {
    return c->field.data + c->starts[i];
}

/* Split s at ';' into texts (pointers into s). */
static na_err_t split_semi(const char *s, const char ***out, size_t **lens, size_t *cnt,
                           size_t *cap) {
    *cnt = 0;
    if (!s || !*s) {
        return NA_OK;
    }
    for (const char *p = s;;) {
        const char *e = strchr(p, ';');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (*cnt + 1 > *cap) {
            size_t cap2 = *cap ? *cap * 2 : 16;
            const char **o = realloc(*out, cap2 * sizeof(**out));
            if (!o) {
                return NA_ERR_NOMEM;
            }
            *out = o;
            size_t *l = realloc(*lens, cap2 * sizeof(**lens));
            if (!l) {
                return NA_ERR_NOMEM;
            }
            *lens = l;
            *cap = cap2;
        }
        (*out)[*cnt] = p;
        (*lens)[*cnt] = n;
        (*cnt)++;
        if (!e) {
            break;
        }
        p = e + 1;
    }
    return NA_OK;
}

/* Column indices of the CSV header: the published names. */
enum csvcol {
    CC_NAME = 0,
    CC_ALT,
    CC_SOURCE,
    CC_PROGRAMS,
    CC_TYPE,
    CC_ADDRESSES,
    CC_NATIONALITIES,
    CC_CITIZENSHIPS,
    CC_ID,
    CC_ENTITY_NUMBER,
    CC_COUNT
};
static const char *const csv_cols[CC_COUNT] = {
    "name",      "alt_names",     "source",       "programs", "type",
    "addresses", "nationalities", "citizenships", "_id",      "entity_number"};

/* The country of each "; "-separated address: its last ", " part. */
static na_err_t address_countries(struct vlist *b, const char *addrs) {
    for (const char *p = addrs; p && *p && !vlist_full(b);) {
        const char *e = strchr(p, ';');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *c = p;
        for (size_t k = 0; k < n; k++) {
            if (p[k] == ',') {
                c = p + k + 1;
            }
        }
        if (c != p || n) {
            na_err_t err = list_add(b, c, n - (size_t)(c - p));
            if (err) {
                return err;
            }
        }
        p = e ? e + 1 : NULL;
    }
    return NA_OK;
}

static na_err_t load_csv(struct wload *ld, const char *buf, size_t len, char *errstr,
                         size_t errstr_size) {
    struct csv c;
    long col[CC_COUNT];
    size_t ncols = 0;
    size_t line = 1;
    char why[256];
    const char **aliases = NULL;
    size_t *alias_lens = NULL;
    size_t aliases_cap = 0;
    struct vlist country;
    na_err_t err = NA_OK;

    memset(&c, 0, sizeof(c));
    na_buf_init(&c.field);
    /* no cap: each of its fields has one (NA_WATCH_MAX_FIELD_BYTES) */
    vlist_init(&country, SIZE_MAX);
    c.s = buf;
    c.len = len;
    c.line = 1;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
        c.i = 3;
    }
    int r = csv_record(&c, &line, why, sizeof(why));
    if (r <= 0) {
        snprintf(errstr, errstr_size, "%s:%zu: no header line%s%s", ld->path, line,
                 why[0] ? ": " : "", why);
        err = c.field.oom ? NA_ERR_NOMEM : NA_ERR_CONFIG;
        goto out;
    }
    for (int k = 0; k < CC_COUNT; k++) {
        col[k] = -1;
    }
    ncols = c.fields_cnt;
    for (size_t i = 0; i < ncols; i++) {
        const char *h = csv_field(&c, i);
        size_t hl = strlen(h);
        trim(&h, &hl);
        for (int k = 0; k < CC_COUNT; k++) {
            if (strlen(csv_cols[k]) == hl && !strncasecmp(h, csv_cols[k], hl) &&
                col[k] < 0) {
                col[k] = (long)i;
            }
        }
    }
    if (col[CC_NAME] < 0) {
        snprintf(errstr, errstr_size,
                 "%s:%zu: the header has no \"name\" column (the Consolidated Screening "
                 "List's CSV starts \"_id,source,entity_number,type,programs,name,...\")",
                 ld->path, line);
        err = NA_ERR_CONFIG;
        goto out;
    }
    for (;;) {
        r = csv_record(&c, &line, why, sizeof(why));
        if (c.field.oom) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        if (r == 0) {
            break;
        }
        if (r < 0) {
            note(ld, line, true, "%s", why);
            continue;
        }
        if (c.fields_cnt != ncols) {
            snprintf(why, sizeof(why), "%zu fields where the header has %zu",
                     c.fields_cnt, ncols);
            if (c.span_line) {
                csv_reject_spanning(&c, line, why, sizeof(why));
            }
            note(ld, line, true, "%s", why);
            continue;
        }
        const char *bad = NULL;
        for (int k = 0; k < CC_COUNT && !bad; k++) {
            if (col[k] >= 0) {
                const char *v = csv_field(&c, (size_t)col[k]);
                if (!na_utf8_valid(v, strlen(v))) {
                    bad = csv_cols[k];
                }
            }
        }
        if (bad) {
            note(ld, line, true, "invalid UTF-8 in column \"%s\"", bad);
            continue;
        }
        struct wrow row;
        memset(&row, 0, sizeof(row));
        row.line = line;
        row.name = csv_field(&c, (size_t)col[CC_NAME]);
        row.name_len = strlen(row.name);
#define CSVCOL(k) (col[k] >= 0 ? csv_field(&c, (size_t)col[k]) : NULL)
        size_t acnt = 0;
        if ((err = split_semi(CSVCOL(CC_ALT), &aliases, &alias_lens, &acnt,
                              &aliases_cap))) {
            goto out;
        }
        row.aliases = aliases;
        row.alias_lens = alias_lens;
        row.aliases_cnt = acnt;
        row.col[NA_WATCH_SOURCE] = CSVCOL(CC_SOURCE);
        row.col[NA_WATCH_PROGRAMS] = CSVCOL(CC_PROGRAMS);
        row.col[NA_WATCH_TYPE] = CSVCOL(CC_TYPE);
        row.col[NA_WATCH_ID] =
            CSVCOL(CC_ID) && *CSVCOL(CC_ID) ? CSVCOL(CC_ID) : CSVCOL(CC_ENTITY_NUMBER);
        vlist_reset(&country);
        if ((err = address_countries(&country, CSVCOL(CC_ADDRESSES)))) {
            goto out;
        }
        const char *more[2] = {CSVCOL(CC_NATIONALITIES), CSVCOL(CC_CITIZENSHIPS)};
        for (int k = 0; k < 2; k++) {
            for (const char *p = more[k]; p && *p;) {
                const char *e = strchr(p, ';');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                if ((err = list_add(&country, p, n))) {
                    goto out;
                }
                p = e ? e + 1 : NULL;
            }
        }
#undef CSVCOL
        row.col[NA_WATCH_COUNTRY] = country.buf.data;
        row.individual =
            row.col[NA_WATCH_TYPE] && !strcasecmp(row.col[NA_WATCH_TYPE], "individual");
        if ((err = add_entry(ld, &row))) {
            goto out;
        }
    }
out:
    free(aliases);
    free(alias_lens);
    free(c.starts);
    na_buf_cleanup(&c.field);
    vlist_cleanup(&country);
    return err;
}

/* ---- one name per line ---- */

static na_err_t load_names(struct wload *ld, const char *buf, size_t len) {
    size_t line = 0;
    na_err_t err = NA_OK;
    size_t i = 0;
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
        i = 3;
    }
    while (i < len) {
        const char *e = memchr(buf + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (buf + i)) : len - i;
        const char *s = buf + i;
        line++;
        i += n + 1;
        if (n > NA_WATCH_MAX_FIELD_BYTES) {
            note(ld, line, true, "line longer than %u bytes", NA_WATCH_MAX_FIELD_BYTES);
            continue;
        }
        trim(&s, &n);
        if (!n || s[0] == '#') {
            continue; /* blank lines and comments */
        }
        if (!na_utf8_valid(s, n)) {
            note(ld, line, true, "invalid UTF-8");
            continue;
        }
        struct wrow row;
        memset(&row, 0, sizeof(row));
        row.line = line;
        row.name = s;
        row.name_len = n;
        row.individual = names_individual(ld, s, n);
        if ((err = add_entry(ld, &row))) {
            return err;
        }
    }
    return ld->oom ? NA_ERR_NOMEM : NA_OK;
}

/* ---- the JSON export ---- */

/* Strings of a JSON value that is a string or an array of strings (or of
 * objects, whose member @p member is taken), appended as a "; " list; the
 * rest is not read once the list is over its cap. */
static na_err_t json_list(struct vlist *b, json_t *v, const char *member) {
    na_err_t err;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (const char *p = s; p && *p && !vlist_full(b);) {
            const char *e = strchr(p, ';');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if ((err = list_add(b, p, n))) {
                return err;
            }
            p = e ? e + 1 : NULL;
        }
        return NA_OK;
    }
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (vlist_full(b)) {
            break;
        }
        if (member && json_is_object(x)) {
            x = json_object_get(x, member);
        }
        if (json_is_string(x) &&
            (err = list_add(b, json_string_value(x), json_string_length(x)))) {
            return err;
        }
    }
    return NA_OK;
}

/* Skip a JSON string at s[*i] == '"'. */
static void js_string(const char *s, size_t len, size_t *i) {
    for ((*i)++; *i < len; (*i)++) {
        if (s[*i] == '\\') {
            (*i)++;
        } else if (s[*i] == '"') {
            (*i)++;
            return;
        }
    }
}

static void js_ws(const char *s, size_t len, size_t *i, size_t *line) {
    while (*i < len && is_space(s[*i])) {
        *line += s[*i] == '\n';
        (*i)++;
    }
}

/* One entry of the export, parsed alone so that a bad one is only itself. */
static na_err_t json_entry(struct wload *ld, const char *s, size_t len, size_t line) {
    json_error_t jerr;
    struct vlist alt, programs, country; /* cut once over the cap: rejected */
    const char **aliases = NULL;
    size_t *alias_lens = NULL;
    size_t aliases_cap = 0;
    size_t acnt = 0;
    na_err_t err = NA_OK;
    json_t *e = NULL;

    vlist_init(&alt, NA_WATCH_MAX_FIELD_BYTES);
    vlist_init(&programs, NA_WATCH_MAX_FIELD_BYTES);
    vlist_init(&country, NA_WATCH_MAX_FIELD_BYTES);
    if (!na_utf8_valid(s, len)) {
        note(ld, line, true, "invalid UTF-8");
        goto out;
    }
    e = json_loadb(s, len, JSON_DECODE_ANY, &jerr);
    if (!e) {
        size_t l = line + (size_t)(jerr.line > 0 ? jerr.line - 1 : 0);
        note(ld, l, true, "%s", jerr.text);
        goto out;
    }
    if (!json_is_object(e)) {
        note(ld, line, true, "an entry must be a JSON object");
        goto out;
    }
    json_t *name = json_object_get(e, "name");
    if (!json_is_string(name)) {
        note(ld, line, true, "%s", name ? "\"name\" must be a string" : "no \"name\"");
        goto out;
    }
    if (json_string_length(name) != strlen(json_string_value(name))) {
        note(ld, line, true, "\"name\" contains a NUL byte");
        goto out;
    }
    if (json_string_length(name) > NA_WATCH_MAX_FIELD_BYTES) {
        note(ld, line, true, "\"name\" is longer than %u bytes",
             NA_WATCH_MAX_FIELD_BYTES);
        goto out;
    }
    if ((err = json_list(&alt, json_object_get(e, "alt_names"), NULL)) ||
        (err = json_list(&programs, json_object_get(e, "programs"), NULL)) ||
        (err = json_list(&country, json_object_get(e, "addresses"), "country")) ||
        (err = json_list(&country, json_object_get(e, "nationalities"), NULL)) ||
        (err = json_list(&country, json_object_get(e, "citizenships"), NULL))) {
        goto out;
    }
    json_t *addrs = json_object_get(e, "addresses");
    if (json_is_string(addrs) &&
        (err = address_countries(&country, json_string_value(addrs)))) {
        goto out;
    }
    if ((err = split_semi(alt.buf.data, &aliases, &alias_lens, &acnt, &aliases_cap))) {
        goto out;
    }
    struct wrow row;
    memset(&row, 0, sizeof(row));
    row.line = line;
    row.name = json_string_value(name);
    row.name_len = json_string_length(name);
    row.aliases = aliases;
    row.alias_lens = alias_lens;
    row.aliases_cnt = acnt;
    row.col[NA_WATCH_SOURCE] = json_string_value(json_object_get(e, "source"));
    row.col[NA_WATCH_PROGRAMS] = programs.buf.data;
    row.col[NA_WATCH_COUNTRY] = country.buf.data;
    row.col[NA_WATCH_TYPE] = json_string_value(json_object_get(e, "type"));
    row.col[NA_WATCH_ID] = json_string_value(json_object_get(e, "id"));
    if (!row.col[NA_WATCH_ID]) {
        row.col[NA_WATCH_ID] = json_string_value(json_object_get(e, "_id"));
    }
    if (!row.col[NA_WATCH_ID]) {
        row.col[NA_WATCH_ID] = json_string_value(json_object_get(e, "entity_number"));
    }
    static const char *const col_names[NA_WATCH_COLS] = {"name",    "source", "programs",
                                                         "country", "type",   "id"};
    for (int c = 0; c < NA_WATCH_COLS; c++) {
        if (row.col[c] && strlen(row.col[c]) > NA_WATCH_MAX_FIELD_BYTES) {
            note(ld, line, true, "\"%s\" is longer than %u bytes", col_names[c],
                 NA_WATCH_MAX_FIELD_BYTES);
            goto out;
        }
    }
    if (vlist_full(&alt)) {
        note(ld, line, true, "\"alt_names\" is longer than %u bytes",
             NA_WATCH_MAX_FIELD_BYTES);
        goto out;
    }
    row.individual =
        row.col[NA_WATCH_TYPE] && !strcasecmp(row.col[NA_WATCH_TYPE], "individual");
    err = add_entry(ld, &row);
out:
    json_decref(e);
    free(aliases);
    free(alias_lens);
    vlist_cleanup(&alt);
    vlist_cleanup(&programs);
    vlist_cleanup(&country);
    return err;
}

static na_err_t load_json(struct wload *ld, const char *s, size_t len, char *errstr,
                          size_t errstr_size) {
    size_t i = 0;
    size_t line = 1;
    na_err_t err;
    if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
        i = 3;
    }
    js_ws(s, len, &i, &line);
    if (i < len && s[i] == '{') {
        /* {"...": .., "results": [..]}: find "results" at depth 1 */
        int depth = 0;
        bool found = false;
        while (i < len && !found) {
            char c = s[i];
            if (c == '"') {
                size_t a = i;
                js_string(s, len, &i);
                if (depth == 1 && i - a == 9 && !memcmp(s + a, "\"results\"", 9)) {
                    js_ws(s, len, &i, &line);
                    if (i < len && s[i] == ':') {
                        i++;
                        js_ws(s, len, &i, &line);
                        found = true;
                    }
                }
                continue;
            }
            line += c == '\n';
            depth += (c == '{' || c == '[') - (c == '}' || c == ']');
            i++;
        }
        if (!found) {
            snprintf(errstr, errstr_size,
                     "%s: no \"results\" array (the export is {\"results\": [...]} or "
                     "an array of entries)",
                     ld->path);
            return NA_ERR_CONFIG;
        }
    }
    if (i >= len || s[i] != '[') {
        snprintf(errstr, errstr_size,
                 "%s:%zu: expected an array of entries (or {\"results\": [...]})",
                 ld->path, line);
        return NA_ERR_CONFIG;
    }
    i++;
    for (;;) {
        js_ws(s, len, &i, &line);
        if (i >= len) {
            note(ld, line, true, "the array of entries is not closed");
            break;
        }
        if (s[i] == ']') {
            break;
        }
        if (s[i] == ',') {
            i++;
            continue;
        }
        /* one element: up to the comma or bracket at its depth */
        size_t a = i;
        size_t l0 = line;
        int depth = 0;
        while (i < len) {
            char c = s[i];
            if (c == '"') {
                js_string(s, len, &i);
                continue;
            }
            if (depth == 0 && (c == ',' || c == ']')) {
                break;
            }
            line += c == '\n';
            depth += (c == '{' || c == '[') - (c == '}' || c == ']');
            i++;
            if (depth < 0) {
                break;
            }
        }
        if ((err = json_entry(ld, s + a, i - a, l0))) {
            return err;
        }
    }
    return ld->oom ? NA_ERR_NOMEM : NA_OK;
}

/* ---- freezing ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static na_err_t freeze(struct wload *ld) {
    na_watch_t *w = ld->w;
    size_t bits = 4096;
    while (bits < w->toks_cnt * 4) { /* 16 measured no faster */
        bits *= 2;
    }
    size_t slots = 16;
    while (slots < w->toks_cnt * 2) {
        slots *= 2;
    }
    w->bloom = calloc(bits / 64, sizeof(*w->bloom));
    w->stab = calloc(slots, sizeof(*w->stab));
    w->end_first = calloc((size_t)w->nodes_cnt + 1, sizeof(*w->end_first));
    w->ends = malloc((ld->ends_cnt ? ld->ends_cnt : 1) * sizeof(*w->ends));
    if (!w->bloom || !w->stab || !w->end_first || !w->ends) {
        return NA_ERR_NOMEM;
    }
    w->bloom_mask = bits / 64 - 1;
    w->stab_mask = slots - 1;
    qsort(ld->ends, ld->ends_cnt, sizeof(*ld->ends), cmp_u64);
    for (size_t i = 0; i < ld->ends_cnt; i++) {
        w->end_first[(ld->ends[i] >> 32) + 1]++;
        w->ends[i] = (uint32_t)ld->ends[i];
    }
    for (uint32_t n = 0; n < w->nodes_cnt; n++) {
        w->end_first[n + 1] += w->end_first[n];
    }
    /* nodes with children */
    uint64_t *kids = calloc(((size_t)w->nodes_cnt + 63) / 64, sizeof(*kids));
    if (!kids) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i <= w->edges_mask; i++) {
        if (w->edges[i].key) {
            uint64_t parent = (w->edges[i].key - 1) >> 32;
            kids[parent >> 6] |= (uint64_t)1 << (parent & 63);
        }
    }
    for (size_t i = 0; i < w->toks_cnt; i++) {
        const struct na_wtok *t = &w->toks[i];
        uint64_t h = na_watch_word_hash(w->pool + t->off, t->len);
        w->bloom[h & w->bloom_mask] |= na_watch_bloom_bits(h);
        size_t j = (uint32_t)(h >> 32) & w->stab_mask;
        while (w->stab[j].id1) {
            j = (j + 1) & w->stab_mask;
        }
        struct na_wsslot *sl = &w->stab[j];
        sl->hash = (uint32_t)(h >> 32);
        sl->id1 = (uint32_t)i + 1;
        sl->len = (uint16_t)t->len;
        sl->root = na_watch_edge_find(w, 0, (uint32_t)i);
        memcpy(sl->w, w->pool + t->off, t->len < 16 ? t->len : 16);
        if (sl->root != NA_WNONE) {
            uint8_t f = kids[sl->root >> 6] >> (sl->root & 63) & 1u ? NA_WROOT_KIDS : 0;
            for (uint32_t e = w->end_first[sl->root]; e < w->end_first[sl->root + 1];
                 e++) {
                const struct na_wpat *pt = &w->pats[w->ends[e]];
                char c0 = pt->exact_cnt ? w->pool[w->spans[pt->exact_first].off] : 0;
                f |= !pt->exact_cnt || (c0 >= 'a' && c0 <= 'z') ? NA_WROOT_ENDS
                                                                : NA_WROOT_EXACT;
            }
            sl->flags = f;
        }
    }
    free(kids);
    /* the head filter: 16 bits per word */
    size_t hbits = 4096;
    while (hbits < w->toks_cnt * 16 && hbits < ((size_t)1 << 30)) {
        hbits *= 2;
    }
    w->head = calloc(hbits / 64, sizeof(*w->head));
    if (!w->head) {
        return NA_ERR_NOMEM;
    }
    w->head_mask = hbits / 64 - 1;
    for (size_t i = 0; i < w->toks_cnt; i++) {
        const struct na_wtok *t = &w->toks[i];
        size_t n = t->len < 8 ? t->len : 8;
        uint64_t v = 0;
        memcpy(&v, w->pool + t->off, n);
        if (n) {
            v |= 0x2020202020202020ull & (~(uint64_t)0 >> (8 * (8 - n)));
        }
        uint64_t k = na_watch_head_key(v, t->len);
        w->head[na_watch_head_word(k, w->head_mask)] |= (uint64_t)1
                                                        << na_watch_head_bit(k);
    }
    /* the pairs filter: 8 bits per edge from a name's first word */
    uint32_t *first = malloc(((size_t)w->nodes_cnt + 1) * sizeof(*first));
    if (!first) {
        return NA_ERR_NOMEM;
    }
    for (uint32_t n = 0; n <= w->nodes_cnt; n++) {
        first[n] = NA_WNONE; /* the word of a node one word from the root */
    }
    size_t pairs = 0;
    for (size_t j = 0; j <= w->stab_mask; j++) {
        if (w->stab[j].id1 && w->stab[j].root != NA_WNONE) {
            first[w->stab[j].root] = w->stab[j].id1 - 1;
        }
    }
    for (size_t j = 0; j <= w->edges_mask; j++) {
        pairs += w->edges[j].key && first[(w->edges[j].key - 1) >> 32] != NA_WNONE;
    }
    size_t pbits = 4096;
    while (pbits < pairs * 8 && pbits < ((size_t)1 << 30)) {
        pbits *= 2;
    }
    w->pair = calloc(pbits / 64, sizeof(*w->pair));
    if (!w->pair) {
        free(first);
        return NA_ERR_NOMEM;
    }
    w->pair_mask = pbits / 64 - 1;
    for (size_t j = 0; j <= w->edges_mask; j++) {
        if (!w->edges[j].key) {
            continue;
        }
        uint32_t w0 = first[(w->edges[j].key - 1) >> 32];
        uint32_t w1 = (uint32_t)(w->edges[j].key - 1);
        if (w0 == NA_WNONE) {
            continue;
        }
        const struct na_wtok *t0 = &w->toks[w0];
        const struct na_wtok *t1 = &w->toks[w1];
        uint64_t k = na_watch_pair_key(na_watch_word_hash(w->pool + t0->off, t0->len),
                                       na_watch_word_hash(w->pool + t1->off, t1->len));
        w->pair[(k >> 34) & w->pair_mask] |= (uint64_t)1 << (k >> 58);
    }
    free(first);
    /* the one-word names' filter: 8 bits per such word */
    size_t ones = 0;
    for (size_t j = 0; j <= w->stab_mask; j++) {
        ones += w->stab[j].id1 && (w->stab[j].flags & (NA_WROOT_ENDS | NA_WROOT_EXACT));
    }
    size_t obits = 64;
    while (obits < ones * 8) {
        obits *= 2;
    }
    w->one = calloc(obits / 64, sizeof(*w->one));
    if (!w->one) {
        return NA_ERR_NOMEM;
    }
    w->one_mask = obits / 64 - 1;
    for (size_t i = 0; i < w->toks_cnt; i++) {
        const struct na_wtok *t = &w->toks[i];
        uint64_t h = na_watch_word_hash(w->pool + t->off, t->len);
        uint32_t hash = (uint32_t)(h >> 32);
        for (size_t j = hash & w->stab_mask; w->stab[j].id1; j = (j + 1) & w->stab_mask) {
            if (w->stab[j].id1 == i + 1) {
                if (w->stab[j].flags & NA_WROOT_ENDS) {
                    w->one[(h >> 24) & w->one_mask] |= na_watch_one_bits(h);
                }
                if (w->stab[j].flags & NA_WROOT_EXACT) {
                    w->one[(h >> 24) & w->one_mask] |= na_watch_one_exact_bits(h);
                }
                break;
            }
        }
    }
    return NA_OK;
}

static na_err_t legal_init(struct wload *ld) {
    na_watch_t *w = ld->w;
    for (size_t i = 0; i < NA_WATCH_LEGAL_CNT; i++) {
        uint32_t parts[NA_WATCH_LEGAL_MAX_WORDS];
        bool truncated;
        struct na_rtoks *t = &ld->toks;
        t->cnt = 0;
        t->text_len = 0;
        if (na_rules_tokenize(legal_forms[i], strlen(legal_forms[i]), t)) {
            return NA_ERR_NOMEM;
        }
        size_t n = name_parts(t, parts, NA_WATCH_LEGAL_MAX_WORDS, &truncated);
        if (n > NA_WATCH_LEGAL_MAX_WORDS) {
            n = 0;
        }
        for (size_t k = 0; k < n; k++) {
            const struct na_rtok *tok = &t->v[parts[k]];
            uint32_t id = na_watch_dict_add(w, t->text + tok->fold_off, tok->fold_len);
            if (id == NA_WNONE) {
                return NA_ERR_NOMEM;
            }
            w->legal_words[i * NA_WATCH_LEGAL_MAX_WORDS + k] = id;
            if (!k) {
                w->toks[id].legal = 1;
            }
        }
        w->legal_len[i] = (uint8_t)n;
    }
    return NA_OK;
}

int na_watch_format_parse(const char *name, enum na_watch_format *f) {
    if (!strcmp(name, "csl-csv")) {
        *f = NA_WATCH_CSL_CSV;
    } else if (!strcmp(name, "csl-json")) {
        *f = NA_WATCH_CSL_JSON;
    } else if (!strcmp(name, "names")) {
        *f = NA_WATCH_NAMES;
    } else {
        return -1;
    }
    return 0;
}

na_err_t na_watch_load(const char *path, enum na_watch_format format,
                       unsigned exact_case_below, const char *topic, na_watch_t **watchp,
                       char *errstr, size_t errstr_size) {
    struct wload ld;
    char *buf = NULL;
    size_t len = 0;
    char labels[256];
    char esc[160];
    na_err_t err;

    *watchp = NULL;
    memset(&ld, 0, sizeof(ld));
    ld.path = path;
    ld.topic = topic;
    ld.exact_below = exact_case_below;
    na_rtoks_init(&ld.toks);
    ld.toks.split_decimals = true;
    snprintf(labels, sizeof(labels), "topic=\"%s\"",
             na_metrics_label_escape(topic, esc, sizeof(esc)));
    ld.m_rejected =
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_watchlist_rows_rejected_total",
                       "Watchlist rows rejected at load (bad row, name or "
                       "UTF-8), by topic",
                       labels);
    err = na_read_file(path, NA_WATCH_MAX_FILE_BYTES, &buf, &len, errstr, errstr_size);
    if (err) {
        err = err == NA_ERR_TOO_LARGE || err == NA_ERR_NOMEM ? err : NA_ERR_IO;
        goto out;
    }
    ld.w = calloc(1, sizeof(*ld.w));
    if (!ld.w) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if ((err = na_sha256_hex(buf, len, ld.w->digest))) {
        goto out;
    }
    ld.w->nodes_cnt = 1; /* the root */
    ld.w->pool = malloc(1024);
    if (!ld.w->pool || na_watch_dict_rehash(ld.w, 1024) ||
        na_watch_edges_rehash(ld.w, 1024)) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    ld.w->pool_cap = 1024;
    ld.w->pool[0] = '\0';
    ld.w->pool_len = 1;
    if ((err = legal_init(&ld))) {
        goto out;
    }
    switch (format) {
    case NA_WATCH_CSL_CSV:
        err = load_csv(&ld, buf, len, errstr, errstr_size);
        break;
    case NA_WATCH_CSL_JSON:
        err = load_json(&ld, buf, len, errstr, errstr_size);
        break;
    default:
        err = load_names(&ld, buf, len);
        break;
    }
    if (!err && ld.oom) {
        err = NA_ERR_NOMEM;
    }
    if (err) {
        goto out;
    }
    if (!ld.w->entries_cnt) {
        snprintf(errstr, errstr_size, "%s: no entry loaded (%zu rows rejected%s%s)", path,
                 ld.w->rejected, ld.w->msgs_cnt ? "; first: " : "",
                 ld.w->msgs_cnt ? ld.w->msgs[0] : "");
        err = NA_ERR_CONFIG;
        goto out;
    }
    err = freeze(&ld);
out:
    if (err == NA_ERR_NOMEM) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
    }
    free(buf);
    free(ld.ends);
    na_rtoks_cleanup(&ld.toks);
    if (err) {
        na_watch_destroy(ld.w);
    } else {
        *watchp = ld.w;
    }
    return err;
}
