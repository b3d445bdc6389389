#include "seen.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/config.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

/* Sizes of the encoding (seen.h, "Storage"). */
#define ID_BYTES 16   /* article id key */
#define FPB 8         /* fingerprint */
#define NAME_BYTES 16 /* file name: 32 hex digits */
#define NAME_HEX (2 * NAME_BYTES)
#define ENTRY_BYTES (ID_BYTES + FPB + 4 + 1)
#define SUM_BYTES 8
#define MAGIC_LEN 8
#define FEED_MAGIC "NASEEN3\n"
#define SCHED_MAGIC "NASCHD1\n"
#define SCHED_RECORD (NAME_BYTES + 8 + 8)
/* The schedule holds at most this many feeds, reader and writer alike. */
#define SCHED_MAX ((size_t)NA_SEEN_MAX_FEEDS + NA_MAX_SOURCES)
#define SCHED_NONE INT64_MIN

enum { FP_NONE = 0, FP_SET = 1, FP_UNKNOWN = 2 };

struct entry {
    uint64_t seq; /* order of last sight: eviction drops the lowest */
    uint32_t rev;
    uint8_t id[ID_BYTES];
    uint8_t fp[FPB];
    uint8_t fp_state;
};

/* One feed. Ids live in an array with two open-addressing indexes (id and
 * fingerprint to array position + 1), rebuilt after evictions; a changed
 * fingerprint only marks the fingerprint index stale. */
struct sfeed {
    char *id;
    uint64_t hash;            /* of id: the feed table's */
    uint8_t name[NAME_BYTES]; /* first bytes of SHA-256(id) */
    json_t *meta;             /* the "state" object (seen.h) */
    struct entry *v;
    uint32_t cnt, size;
    uint32_t *ix, ix_cap; /* ids */
    uint32_t *fx, fx_cap, fx_used;
    bool fx_stale;
    uint64_t seq;    /* the last sequence number given */
    uint64_t mark;   /* seq when the latest fetch began */
    uint32_t latest; /* entries with seq > mark */
    bool dirty;      /* its file waits to be written */
    int64_t dirty_ms;
    struct sfeed *dprev, *dnext;
};

struct na_seen_s {
    char *dir; /* STATE_DIR/seen; NULL: memory only */
    int lock_fd;
    struct sfeed **tab; /* open addressing on hash, linear probing */
    size_t tab_cap, cnt;
    struct sfeed *dhead, *dtail; /* dirty feeds, oldest change first */
    uint8_t (*gone)[NAME_BYTES]; /* files to remove */
    size_t gone_cnt, gone_size;
    int64_t gone_ms;
    bool sched_dirty;
    int64_t sched_ms;
};

/* Members of "state": the strings, and the integers (the last two are the
 * schedule, kept in the schedule file). */
static const char *const str_keys[] = {
    "etag", "last_modified", "source_url", "url", "moved_from", "retired", NULL,
};
static const char *const int_keys[] = {
    "ttl", "skip_hours", "skip_days", "next_at", "active_at", NULL,
};
static const char *const sched_keys[] = {"next_at", "active_at"};

static bool in_list(const char *const *list, const char *key) {
    for (; *list; list++) {
        if (!strcmp(*list, key)) {
            return true;
        }
    }
    return false;
}

static bool is_sched_key(const char *key) {
    return !strcmp(key, sched_keys[0]) || !strcmp(key, sched_keys[1]);
}

/* ---------------------------------------------------------------------------
 * small encoders */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static void put_i64(uint8_t *p, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(u >> (8 * i));
    }
}

static int64_t get_i64(const uint8_t *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) {
        u |= (uint64_t)p[i] << (8 * i);
    }
    return (int64_t)u;
}

/* @returns NA_OK or NA_ERR_NOMEM (na_sha256()). */
static na_err_t checksum(const void *data, size_t len, uint8_t sum[SUM_BYTES]) {
    unsigned char md[NA_SHA256_LEN];
    na_err_t err = na_sha256(data, len, md);
    memcpy(sum, md, SUM_BYTES);
    return err;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* @returns true when @p s is exactly @p n hex digits (lower case). */
static bool is_hex(const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n && s[i] && hexval((unsigned char)s[i]) >= 0; i++) {
    }
    return i == n && !s[i];
}

static void hex_decode(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(hexval((unsigned char)s[2 * i]) << 4 |
                           hexval((unsigned char)s[2 * i + 1]));
    }
}

/* The key of an article id. Article ids are SHA-256 in hex: their 32
 * bytes folded to ID_BYTES (the halves XORed; as uniform as the hash).
 * Any other string: the first ID_BYTES of its SHA-256.
 * @returns NA_OK, or NA_ERR_NOMEM (that SHA-256 could not be made). */
static na_err_t id_key(const char *id, uint8_t out[ID_BYTES]) {
    unsigned char md[NA_SHA256_LEN];
    na_err_t err = NA_OK;
    if (is_hex(id, NA_SHA256_HEX_LEN)) {
        hex_decode(id, md, NA_SHA256_LEN);
    } else {
        err = na_sha256(id, strlen(id), md);
    }
    for (size_t i = 0; i < ID_BYTES; i++) {
        out[i] = md[i] ^ md[i + ID_BYTES];
    }
    return err;
}

/* The key of a fingerprint: its NA_SEEN_FP_LEN hex digits as bytes (as
 * na_seen_fingerprint() makes them), else the first FPB of its SHA-256.
 * @returns NA_OK, or NA_ERR_NOMEM (that SHA-256 could not be made). */
static na_err_t fp_key(const char *fp, uint8_t out[FPB]) {
    if (is_hex(fp, 2 * FPB)) {
        hex_decode(fp, out, FPB);
        return NA_OK;
    }
    unsigned char md[NA_SHA256_LEN];
    na_err_t err = na_sha256(fp, strlen(fp), md);
    memcpy(out, md, FPB);
    return err;
}

static void name_hex(const uint8_t name[NAME_BYTES], char hex[NAME_HEX + 1]) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < NAME_BYTES; i++) {
        hex[2 * i] = digits[name[i] >> 4];
        hex[2 * i + 1] = digits[name[i] & 0xf];
    }
    hex[NAME_HEX] = '\0';
}

static bool name_parse(const char *hex, uint8_t name[NAME_BYTES]) {
    if (strlen(hex) != NAME_HEX) {
        return false;
    }
    for (size_t i = 0; i < NAME_BYTES; i++) {
        int hi = hexval((unsigned char)hex[2 * i]);
        int lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        name[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

/* Hash of an @p n-byte key (n a multiple of 8): every byte counts, so that
 * keys alike in some bytes (ids of one site, numbered ones) spread too. */
static uint32_t key_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= w; /* then a full avalanche (the splitmix64 finaliser) */
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    return (uint32_t)h;
}

/* ---------------------------------------------------------------------------
 * one feed: ids and their indexes */

static void sfeed_free(struct sfeed *f) {
    if (!f) {
        return;
    }
    free(f->id);
    json_decref(f->meta);
    free(f->v);
    free(f->ix);
    free(f->fx);
    free(f);
}

static struct sfeed *sfeed_new(const char *id) {
    struct sfeed *f = calloc(1, sizeof(*f));
    unsigned char md[NA_SHA256_LEN];
    if (!f || !(f->id = na_strdup(id)) || !(f->meta = json_object())) {
        sfeed_free(f);
        return NULL;
    }
    f->hash = str_hash(id);
    if (na_sha256(id, strlen(id), md)) {
        sfeed_free(f);
        return NULL;
    }
    memcpy(f->name, md, NAME_BYTES);
    return f;
}

static int64_t entry_find(const struct sfeed *f, const uint8_t id[ID_BYTES]) {
    if (!f->ix_cap) {
        return -1;
    }
    for (uint32_t i = key_hash(id, ID_BYTES) & (f->ix_cap - 1);;
         i = (i + 1) & (f->ix_cap - 1)) {
        uint32_t slot = f->ix[i];
        if (!slot) {
            return -1;
        }
        if (!memcmp(f->v[slot - 1].id, id, ID_BYTES)) {
            return slot - 1;
        }
    }
}

static void ix_insert(struct sfeed *f, uint32_t pos) {
    uint32_t i = key_hash(f->v[pos].id, ID_BYTES) & (f->ix_cap - 1);
    while (f->ix[i]) {
        i = (i + 1) & (f->ix_cap - 1);
    }
    f->ix[i] = pos + 1;
}

static int ix_rebuild(struct sfeed *f, uint32_t cap) {
    uint32_t *ix = calloc(cap, sizeof(*ix));
    if (!ix) {
        return -1;
    }
    free(f->ix);
    f->ix = ix;
    f->ix_cap = cap;
    for (uint32_t i = 0; i < f->cnt; i++) {
        ix_insert(f, i);
    }
    return 0;
}

/* Slot of fingerprint @p fp in the index: an occupied one whose entry has
 * that fingerprint, or the empty one where it would go. */
static uint32_t fx_slot(const struct sfeed *f, const uint8_t fp[FPB]) {
    uint32_t i = key_hash(fp, FPB) & (f->fx_cap - 1);
    for (;; i = (i + 1) & (f->fx_cap - 1)) {
        uint32_t slot = f->fx[i];
        if (!slot) {
            return i;
        }
        const struct entry *e = &f->v[slot - 1];
        if (e->fp_state == FP_SET && !memcmp(e->fp, fp, FPB)) {
            return i;
        }
    }
}

static int fx_rebuild(struct sfeed *f) {
    uint32_t cap = 16;
    while (cap < 2 * f->cnt + 2) {
        cap *= 2;
    }
    uint32_t *fx = calloc(cap, sizeof(*fx));
    if (!fx) {
        return -1;
    }
    free(f->fx);
    f->fx = fx;
    f->fx_cap = cap;
    f->fx_used = 0;
    f->fx_stale = false;
    for (uint32_t i = 0; i < f->cnt; i++) {
        if (f->v[i].fp_state == FP_SET) {
            uint32_t s = fx_slot(f, f->v[i].fp);
            f->fx_used += !f->fx[s];
            f->fx[s] = i + 1;
        }
    }
    return 0;
}

/* Index entry @p pos under its fingerprint (the latest holder wins). */
static void fx_add(struct sfeed *f, uint32_t pos) {
    if (f->fx_stale || 2 * (f->fx_used + 1) > f->fx_cap) {
        if (fx_rebuild(f)) {
            f->fx_stale = true;
        }
        return; /* the rebuild indexed it */
    }
    uint32_t s = fx_slot(f, f->v[pos].fp);
    f->fx_used += !f->fx[s];
    f->fx[s] = pos + 1;
}

static bool fx_has(struct sfeed *f, const uint8_t fp[FPB]) {
    if (f->fx_stale && fx_rebuild(f)) {
        /* No memory for the index: scan. */
        for (uint32_t i = 0; i < f->cnt; i++) {
            if (f->v[i].fp_state == FP_SET && !memcmp(f->v[i].fp, fp, FPB)) {
                return true;
            }
        }
        return false;
    }
    return f->fx_cap && f->fx[fx_slot(f, fp)] != 0;
}

/* Room for @p n entries in all (a load knows how many). */
static int reserve(struct sfeed *f, uint32_t n) {
    uint32_t cap = 32;
    if (n <= f->size) {
        return 0;
    }
    struct entry *v = realloc(f->v, (size_t)n * sizeof(*v));
    if (!v) {
        return -1;
    }
    f->v = v;
    f->size = n;
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    return cap > f->ix_cap ? ix_rebuild(f, cap) : 0;
}

/* Append an entry; @returns its position or -1 on no memory. */
static int64_t entry_append(struct sfeed *f, const uint8_t id[ID_BYTES]) {
    if (f->cnt == f->size) {
        uint32_t n = f->size ? f->size * 2 : 16;
        struct entry *v = realloc(f->v, n * sizeof(*v));
        if (!v) {
            return -1;
        }
        f->v = v;
        f->size = n;
    }
    if (2 * (f->cnt + 1) > f->ix_cap) {
        uint32_t cap = f->ix_cap ? f->ix_cap * 2 : 32;
        if (ix_rebuild(f, cap)) {
            return -1;
        }
    }
    struct entry *e = &f->v[f->cnt];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, ID_BYTES);
    e->rev = 1;
    e->fp_state = FP_NONE;
    ix_insert(f, f->cnt);
    return f->cnt++;
}

/* Give entry @p pos the next sequence number, once per fetch: it is one of
 * the latest fetch. */
static void renumber(struct sfeed *f, uint32_t pos) {
    if (f->v[pos].seq > f->mark) {
        return;
    }
    f->v[pos].seq = ++f->seq;
    f->latest++;
}

struct seq_pos {
    uint64_t seq;
    uint32_t pos;
};

static int cmp_seq_pos(const void *a, const void *b) {
    const struct seq_pos *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Positions of the entries sorted by sequence number, oldest first.
 * @returns new array of f->cnt, or NULL (no memory, or no entries). */
static struct seq_pos *by_seq(const struct sfeed *f) {
    struct seq_pos *o = malloc(((size_t)f->cnt + 1) * sizeof(*o));
    if (!o) {
        return NULL;
    }
    for (uint32_t i = 0; i < f->cnt; i++) {
        o[i].seq = f->v[i].seq;
        o[i].pos = i;
    }
    qsort(o, f->cnt, sizeof(*o), cmp_seq_pos);
    return o;
}

/* Ids of the latest fetch (seq above the mark) all stay: the feed still
 * carries them. Of the others the NA_SEEN_IDS_PER_FEED most recently seen
 * stay; the pass runs once a tenth more piled up, so its O(n log n) is paid
 * once per NA_SEEN_IDS_PER_FEED / 10 additions. The hard cap
 * NA_SEEN_MAX_IDS_PER_FEED, which no caller that touches only the items of
 * one document reaches, drops the oldest whatever they are. */
static void evict(struct sfeed *f) {
    uint32_t old = f->cnt - f->latest, drop = 0, keep = 0, cap = 32;
    struct seq_pos *o = NULL;
    uint32_t *ix = NULL;
    if (old > NA_SEEN_IDS_PER_FEED) {
        drop = old - NA_SEEN_IDS_PER_FEED;
    }
    if (f->cnt - drop > NA_SEEN_MAX_IDS_PER_FEED) {
        drop = f->cnt - NA_SEEN_MAX_IDS_PER_FEED;
    }
    while (cap < 2 * (f->cnt - drop) + 2) {
        cap *= 2;
    }
    /* Everything allocated before anything moves: on no memory the feed
     * stays as it is, over its cap until the next put. */
    if (!drop || !(o = by_seq(f)) || !(ix = calloc(cap, sizeof(*ix)))) {
        free(o);
        return;
    }
    /* The oldest `drop` go: marked (revisions are at least 1), then the
     * array is compacted in place and indexed again. */
    for (uint32_t i = 0; i < drop; i++) {
        f->v[o[i].pos].rev = 0;
    }
    free(o);
    for (uint32_t i = 0; i < f->cnt; i++) {
        if (f->v[i].rev) {
            f->v[keep++] = f->v[i];
        }
    }
    f->cnt = keep;
    f->latest = 0;
    for (uint32_t i = 0; i < f->cnt; i++) {
        f->latest += f->v[i].seq > f->mark;
    }
    free(f->ix);
    f->ix = ix;
    f->ix_cap = cap;
    for (uint32_t i = 0; i < f->cnt; i++) {
        ix_insert(f, i);
    }
    f->fx_stale = true; /* rebuilt at its next use */
}

static bool over_cap(const struct sfeed *f) {
    return f->cnt > NA_SEEN_MAX_IDS_PER_FEED ||
           f->cnt - f->latest > NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10;
}

/* ---------------------------------------------------------------------------
 * the feed table and the dirty list */

static struct sfeed *feed_find(const na_seen_t *seen, const char *id) {
    if (!seen->tab_cap || !id) {
        return NULL;
    }
    uint64_t h = str_hash(id);
    for (size_t i = h & (seen->tab_cap - 1);; i = (i + 1) & (seen->tab_cap - 1)) {
        struct sfeed *f = seen->tab[i];
        if (!f) {
            return NULL;
        }
        if (f->hash == h && !strcmp(f->id, id)) {
            return f;
        }
    }
}

static void tab_place(struct sfeed **tab, size_t cap, struct sfeed *f) {
    size_t i = f->hash & (cap - 1);
    while (tab[i]) {
        i = (i + 1) & (cap - 1);
    }
    tab[i] = f;
}

static int tab_insert(na_seen_t *seen, struct sfeed *f) {
    if (2 * (seen->cnt + 1) > seen->tab_cap) {
        size_t cap = seen->tab_cap ? seen->tab_cap * 2 : 64;
        struct sfeed **tab = calloc(cap, sizeof(*tab));
        if (!tab) {
            return -1;
        }
        for (size_t i = 0; i < seen->tab_cap; i++) {
            if (seen->tab[i]) {
                tab_place(tab, cap, seen->tab[i]);
            }
        }
        free(seen->tab);
        seen->tab = tab;
        seen->tab_cap = cap;
    }
    tab_place(seen->tab, seen->tab_cap, f);
    seen->cnt++;
    return 0;
}

/* Remove @p f from the table (backward-shift deletion keeps every probe
 * run unbroken). */
static void tab_remove(na_seen_t *seen, struct sfeed *f) {
    size_t mask = seen->tab_cap - 1;
    size_t i = f->hash & mask;
    while (seen->tab[i] != f) {
        i = (i + 1) & mask;
    }
    seen->tab[i] = NULL;
    seen->cnt--;
    for (size_t j = (i + 1) & mask; seen->tab[j]; j = (j + 1) & mask) {
        size_t home = seen->tab[j]->hash & mask;
        /* Move j back to i when its home is not in (i, j] (cyclically). */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            seen->tab[i] = seen->tab[j];
            seen->tab[j] = NULL;
            i = j;
        }
    }
}

static void dirty_unlink(na_seen_t *seen, struct sfeed *f) {
    if (!f->dirty) {
        return;
    }
    if (f->dprev) {
        f->dprev->dnext = f->dnext;
    } else {
        seen->dhead = f->dnext;
    }
    if (f->dnext) {
        f->dnext->dprev = f->dprev;
    } else {
        seen->dtail = f->dprev;
    }
    f->dprev = f->dnext = NULL;
    f->dirty = false;
}

static void mark_dirty(na_seen_t *seen, struct sfeed *f) {
    if (f->dirty) {
        return;
    }
    f->dirty = true;
    f->dirty_ms = na_mono_ms();
    f->dprev = seen->dtail;
    f->dnext = NULL;
    if (seen->dtail) {
        seen->dtail->dnext = f;
    } else {
        seen->dhead = f;
    }
    seen->dtail = f;
}

static void mark_sched(na_seen_t *seen) {
    if (!seen->sched_dirty) {
        seen->sched_dirty = true;
        seen->sched_ms = na_mono_ms();
    }
}

/* A change of member @p key of @p f. */
static void mark_key(na_seen_t *seen, struct sfeed *f, const char *key) {
    if (is_sched_key(key)) {
        mark_sched(seen);
    } else {
        mark_dirty(seen, f);
    }
}

static void gone_add(na_seen_t *seen, const uint8_t name[NAME_BYTES]) {
    if (!seen->dir) {
        return;
    }
    if (seen->gone_cnt == seen->gone_size) {
        size_t n = seen->gone_size ? seen->gone_size * 2 : 16;
        uint8_t(*g)[NAME_BYTES] = realloc(seen->gone, n * sizeof(*g));
        if (!g) {
            return; /* the file stays until the feed is pruned again */
        }
        seen->gone = g;
        seen->gone_size = n;
    }
    if (!seen->gone_cnt) {
        seen->gone_ms = na_mono_ms();
    }
    memcpy(seen->gone[seen->gone_cnt++], name, NAME_BYTES);
}

/* Forget @p f: out of the table and the dirty list, its file removed at
 * the next save (unless @p keep_file: it is being replaced). */
static void feed_forget(na_seen_t *seen, struct sfeed *f, bool keep_file) {
    tab_remove(seen, f);
    dirty_unlink(seen, f);
    if (!keep_file) {
        gone_add(seen, f->name);
    }
    sfeed_free(f);
}

static na_err_t feed_get(na_seen_t *seen, const char *id, struct sfeed **out) {
    struct sfeed *f = feed_find(seen, id);
    *out = f;
    if (f) {
        return NA_OK;
    }
    if (strlen(id) > NA_SEEN_MAX_ID_BYTES) {
        return NA_ERR_TOO_LARGE;
    }
    if (!(f = sfeed_new(id)) || tab_insert(seen, f)) {
        sfeed_free(f);
        return NA_ERR_NOMEM;
    }
    /* Nothing to write yet: a feed gets its file with its first change
     * that matters (until then its schedule is not kept either). */
    *out = f;
    return NA_OK;
}

/* Put @p f (a whole, new feed state) in place of the feed of its id. */
static int feed_replace(na_seen_t *seen, struct sfeed *f) {
    struct sfeed *old = feed_find(seen, f->id);
    if (old) {
        feed_forget(seen, old, true);
    }
    if (tab_insert(seen, f)) {
        return -1;
    }
    mark_dirty(seen, f);
    if (json_object_get(f->meta, "next_at") || json_object_get(f->meta, "active_at")) {
        mark_sched(seen);
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * encoding of one feed (seen.h, "Storage") */

/* @p f encoded, the schedule values in "state" only @p with_sched.
 * @param out new buffer of *lenp bytes; free().
 * @returns NA_OK, NA_ERR_NOMEM, or NA_ERR_TOO_LARGE (errstr): a state that
 *          could not be read back, which the caps on ids and values make
 *          impossible. */
static na_err_t feed_encode(const struct sfeed *f, bool with_sched, uint8_t **out,
                            size_t *lenp, char *errstr, size_t errstr_size) {
    json_t *state = json_copy(f->meta);
    json_t *head = NULL;
    char *text = NULL;
    struct seq_pos *o = NULL;
    uint8_t *buf = NULL;
    size_t tlen, len, off;
    na_err_t err = NA_ERR_NOMEM;

    *out = NULL;
    if (!state) {
        goto out;
    }
    if (!with_sched) {
        json_object_del(state, "next_at");
        json_object_del(state, "active_at");
    }
    head = json_pack("{s:s, s:I, s:I, s:O}", "feed", f->id, "ids", (json_int_t)f->cnt,
                     "latest", (json_int_t)f->latest, "state", state);
    if (!head || !(text = json_dumps(head, JSON_COMPACT)) ||
        !(o = f->cnt ? by_seq(f) : calloc(1, sizeof(*o)))) {
        goto out;
    }
    tlen = strlen(text);
    len = MAGIC_LEN + tlen + 1 + (size_t)f->cnt * ENTRY_BYTES + SUM_BYTES;
    if (tlen > NA_SEEN_MAX_META_BYTES || len > NA_MAX_STATE_BYTES) {
        char shown[600];
        snprintf(errstr, errstr_size, "feed %s: state of %zu bytes is too large",
                 na_conf_shown_id_buf(f->id, shown, sizeof(shown)), len);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    if (!(buf = malloc(len))) {
        goto out;
    }
    memcpy(buf, FEED_MAGIC, MAGIC_LEN);
    memcpy(buf + MAGIC_LEN, text, tlen);
    off = MAGIC_LEN + tlen;
    buf[off++] = '\n';
    for (uint32_t i = 0; i < f->cnt; i++) {
        const struct entry *e = &f->v[o[i].pos];
        memcpy(buf + off, e->id, ID_BYTES);
        memcpy(buf + off + ID_BYTES, e->fp, FPB);
        put_u32(buf + off + ID_BYTES + FPB, e->rev);
        buf[off + ID_BYTES + FPB + 4] = e->fp_state;
        off += ENTRY_BYTES;
    }
    if ((err = checksum(buf, off, buf + off))) {
        free(buf);
        goto out;
    }
    *lenp = len;
    *out = buf;
    err = NA_OK;
out:
    json_decref(state);
    json_decref(head);
    free(text);
    free(o);
    return err;
}

/* Copy the known members of @p from (JSON of any version) into @p f's
 * meta. @returns 0, or -1 when one has the wrong type. */
static int meta_take(struct sfeed *f, const json_t *from) {
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)from, key, v) {
        if (in_list(str_keys, key)) {
            if (!json_is_string(v) || json_string_length(v) > NA_SEEN_MAX_VALUE_BYTES) {
                return -1;
            }
        } else if (in_list(int_keys, key)) {
            if (!json_is_integer(v)) {
                return -1;
            }
        } else {
            continue; /* members of older versions (ids, fps, seq, ...) */
        }
        if (json_object_set(f->meta, key, v)) {
            return -1;
        }
    }
    return 0;
}

/* Decode a feed state in the encoding of seen.h. @p want_id: the feed it
 * must be (NULL: any). @returns NA_OK (*out new), NA_ERR_PARSE (errstr),
 * NA_ERR_NOMEM. */
static na_err_t feed_decode(const uint8_t *buf, size_t len, const char *want_id,
                            struct sfeed **out, char *errstr, size_t errstr_size) {
    struct sfeed *f = NULL;
    json_t *head = NULL;
    json_error_t jerr;
    uint8_t sum[SUM_BYTES];
    const uint8_t *nl;
    na_err_t err = NA_ERR_PARSE;
    size_t n, latest, off;

    *out = NULL;
    if (len < MAGIC_LEN + 3 + SUM_BYTES || memcmp(buf, FEED_MAGIC, MAGIC_LEN)) {
        snprintf(errstr, errstr_size, "not a feed state (no %.7s header)", FEED_MAGIC);
        goto out;
    }
    if (checksum(buf, len - SUM_BYTES, sum)) {
        err = NA_ERR_NOMEM; /* not a verdict on the file */
        goto out;
    }
    if (memcmp(sum, buf + len - SUM_BYTES, SUM_BYTES)) {
        snprintf(errstr, errstr_size, "checksum mismatch (%zu bytes)", len);
        goto out;
    }
    nl = memchr(buf + MAGIC_LEN, '\n', len - SUM_BYTES - MAGIC_LEN);
    if (!nl || (size_t)(nl - buf - MAGIC_LEN) > NA_SEEN_MAX_META_BYTES) {
        snprintf(errstr, errstr_size, "no JSON head");
        goto out;
    }
    head = json_loadb((const char *)buf + MAGIC_LEN, (size_t)(nl - buf - MAGIC_LEN), 0,
                      &jerr);
    const char *id = json_string_value(json_object_get(head, "feed"));
    json_t *ids = json_object_get(head, "ids");
    json_t *lat = json_object_get(head, "latest");
    json_t *state = json_object_get(head, "state");
    if (!head || !id || !json_is_integer(ids) || !json_is_integer(lat) ||
        !json_is_object(state)) {
        snprintf(errstr, errstr_size, "bad JSON head: %s", head ? "members" : jerr.text);
        goto out;
    }
    if (want_id && strcmp(id, want_id)) {
        char shown[600], shown_want[600];
        snprintf(errstr, errstr_size, "state of feed %s, not of %s",
                 na_conf_shown_id_buf(id, shown, sizeof(shown)),
                 na_conf_shown_id_buf(want_id, shown_want, sizeof(shown_want)));
        goto out;
    }
    n = (size_t)json_integer_value(ids);
    latest = (size_t)json_integer_value(lat);
    off = (size_t)(nl - buf) + 1;
    if (json_integer_value(ids) < 0 || n > NA_SEEN_MAX_IDS_PER_FEED ||
        json_integer_value(lat) < 0 || latest > n ||
        len - off - SUM_BYTES != n * ENTRY_BYTES || strlen(id) > NA_SEEN_MAX_ID_BYTES) {
        snprintf(errstr, errstr_size, "%zu ids (%zu latest) do not fit %zu bytes", n,
                 latest, len);
        goto out;
    }
    if (!(f = sfeed_new(id))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (meta_take(f, state)) {
        snprintf(errstr, errstr_size, "bad member type in \"state\"");
        goto out;
    }
    if (reserve(f, (uint32_t)n)) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++, off += ENTRY_BYTES) {
        uint8_t st = buf[off + ID_BYTES + FPB + 4];
        uint32_t rev = get_u32(buf + off + ID_BYTES + FPB);
        if (st > FP_UNKNOWN || rev < 1) {
            snprintf(errstr, errstr_size, "bad entry %zu", i);
            goto out;
        }
        int64_t pos = entry_find(f, buf + off);
        if (pos < 0 && (pos = entry_append(f, buf + off)) < 0) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        struct entry *e = &f->v[pos];
        memcpy(e->fp, buf + off + ID_BYTES, FPB);
        e->rev = rev;
        e->fp_state = st;
        e->seq = ++f->seq;
    }
    /* The last `latest` entries are the latest fetch's. */
    f->mark = latest > f->seq ? 0 : f->seq - latest;
    for (uint32_t i = 0; i < f->cnt; i++) {
        f->latest += f->v[i].seq > f->mark;
    }
    if (fx_rebuild(f)) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    *out = f;
    f = NULL;
    err = NA_OK;
out:
    json_decref(head);
    sfeed_free(f);
    return err;
}

struct legacy_id {
    json_int_t seq;
    const char *id;
    json_t *v;
};

static int cmp_legacy(const void *a, const void *b) {
    const struct legacy_id *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A feed state of seen.json versions 1 to 3 (or a JSON record of the state
 * topic): ids map to a sequence number (version 1) or [seq, fp, rev] with
 * fp a string, null (version 3: no text; before: unknown) or false
 * (unknown). */
static na_err_t feed_from_json(const char *id, json_t *obj, json_int_t version,
                               struct sfeed **out, char *errstr, size_t errstr_size) {
    struct sfeed *f = NULL;
    struct legacy_id *l = NULL;
    json_t *ids = json_object_get(obj, "ids");
    json_t *mark = json_object_get(obj, "mark");
    const char *key;
    json_t *v;
    size_t n = 0;
    na_err_t err = NA_ERR_PARSE;

    *out = NULL;
    if (json_is_integer(json_object_get(obj, "version"))) {
        version = json_integer_value(json_object_get(obj, "version"));
    }
    if (!json_is_object(obj) || (ids && !json_is_object(ids))) {
        char shown[600];
        snprintf(errstr, errstr_size, "feed %s: not a feed state",
                 na_conf_shown_id_buf(id, shown, sizeof(shown)));
        goto out;
    }
    if (strlen(id) > NA_SEEN_MAX_ID_BYTES) {
        snprintf(errstr, errstr_size, "feed id of %zu bytes", strlen(id));
        goto out;
    }
    if (!(f = sfeed_new(id)) || !(l = malloc((json_object_size(ids) + 1) * sizeof(*l)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (meta_take(f, obj)) {
        char shown[600];
        snprintf(errstr, errstr_size, "feed %s: bad member type",
                 na_conf_shown_id_buf(id, shown, sizeof(shown)));
        goto out;
    }
    json_object_foreach(ids, key, v) {
        json_t *seq = json_is_array(v) ? json_array_get(v, 0) : v;
        if (!json_is_integer(seq)) {
            char shown[600];
            snprintf(errstr, errstr_size, "feed %s: bad id entry",
                     na_conf_shown_id_buf(id, shown, sizeof(shown)));
            goto out;
        }
        l[n].seq = json_integer_value(seq);
        l[n].id = key;
        l[n++].v = v;
    }
    qsort(l, n, sizeof(*l), cmp_legacy);
    for (size_t i = 0; i < n; i++) {
        uint8_t k[ID_BYTES];
        json_t *fp = json_array_get(l[i].v, 1);
        json_int_t rev = json_integer_value(json_array_get(l[i].v, 2));
        if (id_key(l[i].id, k)) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        int64_t pos = entry_find(f, k);
        if (pos < 0 && (pos = entry_append(f, k)) < 0) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        struct entry *e = &f->v[pos];
        e->rev = rev < 1 ? 1 : rev > INT32_MAX ? INT32_MAX : (uint32_t)rev;
        if (json_is_string(fp)) {
            if (fp_key(json_string_value(fp), e->fp)) {
                err = NA_ERR_NOMEM;
                goto out;
            }
            e->fp_state = FP_SET;
        } else if (json_is_null(fp) && version >= 3) {
            e->fp_state = FP_NONE;
        } else {
            e->fp_state = FP_UNKNOWN;
        }
        e->seq = ++f->seq;
        /* Version 3 knew the latest fetch: ids seen after its mark. */
        if (json_is_integer(mark) && l[i].seq <= json_integer_value(mark)) {
            f->mark = e->seq;
        }
    }
    if (!json_is_integer(mark)) {
        f->mark = f->seq;
    }
    for (uint32_t i = 0; i < f->cnt; i++) {
        f->latest += f->v[i].seq > f->mark;
    }
    if (over_cap(f)) {
        evict(f);
    }
    if (fx_rebuild(f)) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    *out = f;
    f = NULL;
    err = NA_OK;
out:
    free(l);
    sfeed_free(f);
    return err;
}

/* ---------------------------------------------------------------------------
 * files */

static void path_of(const na_seen_t *seen, const char *file, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", seen->dir, file);
}

/* Report a state file that did not load; @p then says what follows. */
static void count_corrupt(const char *then, const char *path, const char *reason) {
    na_log(NA_LOG_ERROR, "seen", "state_file_corrupt", "file=%s err=%s then=%s",
           na_log_q(path), na_log_q(reason), na_log_q(then));
    na_metrics_inc("newsalert_producer_state_corrupt_total",
                   "Seen-state files that did not load (set aside; their feeds start "
                   "empty).",
                   NULL);
}

static void set_aside(const char *path) {
    char aside[4096 + 16];
    snprintf(aside, sizeof(aside), "%s.corrupt", path);
    if (rename(path, aside)) {
        na_log(NA_LOG_WARN, "seen", "state_file_kept", "file=%s err=%s", na_log_q(path),
               na_log_q(strerror(errno)));
    }
}

/* Read one feed file; a corrupt one is reported and set aside. */
static na_err_t load_feed_file(na_seen_t *seen, const char *file,
                               const uint8_t name[NAME_BYTES]) {
    char path[4096], errstr[512];
    char *buf = NULL;
    size_t len = 0;
    struct sfeed *f = NULL;
    na_err_t err;

    path_of(seen, file, path, sizeof(path));
    err = na_read_file(path, NA_MAX_STATE_BYTES, &buf, &len, errstr, sizeof(errstr));
    if (err == NA_ERR_NOMEM) {
        goto out;
    }
    if (!err) {
        err = feed_decode((const uint8_t *)buf, len, NULL, &f, errstr, sizeof(errstr));
        if (err == NA_ERR_NOMEM) {
            goto out;
        }
    }
    if (!err && memcmp(f->name, name, NAME_BYTES)) {
        char shown[600];
        snprintf(errstr, sizeof(errstr), "holds feed %s, whose file has another name",
                 na_conf_shown_id_buf(f->id, shown, sizeof(shown)));
        err = NA_ERR_PARSE;
    }
    if (!err && feed_find(seen, f->id)) {
        char shown[600];
        snprintf(errstr, sizeof(errstr), "feed %s twice",
                 na_conf_shown_id_buf(f->id, shown, sizeof(shown)));
        err = NA_ERR_PARSE;
    }
    if (err) {
        /* Unreadable (I/O) or corrupt: this feed starts empty, the others
         * load. A file that is there but cannot be read stays in place. */
        count_corrupt(err == NA_ERR_IO ? "its feed starts empty"
                                       : "set aside as .corrupt; its feed starts empty",
                      path, errstr);
        if (err != NA_ERR_IO) {
            set_aside(path);
        }
        err = NA_OK;
        goto out;
    }
    if (tab_insert(seen, f)) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    f = NULL;
out:
    free(buf);
    sfeed_free(f);
    return err;
}

struct name_feed {
    const uint8_t *name;
    struct sfeed *f;
};

static int cmp_name_feed(const void *a, const void *b) {
    return memcmp(((const struct name_feed *)a)->name,
                  ((const struct name_feed *)b)->name, NAME_BYTES);
}

static na_err_t load_schedule(na_seen_t *seen) {
    char path[4096], errstr[512];
    char *buf = NULL;
    size_t len = 0, n = 0, k = 0;
    struct name_feed *nf = NULL;
    uint8_t sum[SUM_BYTES];
    struct stat st;
    na_err_t err;

    path_of(seen, "schedule", path, sizeof(path));
    if (stat(path, &st) && errno == ENOENT) {
        return NA_OK;
    }
    err = na_read_file(path, MAGIC_LEN + 4 + SCHED_MAX * SCHED_RECORD + SUM_BYTES, &buf,
                       &len, errstr, sizeof(errstr));
    if (err == NA_ERR_NOMEM) {
        goto out;
    }
    if (!err) {
        err = NA_ERR_PARSE;
        if (len < MAGIC_LEN + 4 + SUM_BYTES || memcmp(buf, SCHED_MAGIC, MAGIC_LEN)) {
            snprintf(errstr, sizeof(errstr), "not a schedule (no %.7s header)",
                     SCHED_MAGIC);
        } else if (checksum(buf, len - SUM_BYTES, sum)) {
            err = NA_ERR_NOMEM; /* not a verdict on the file */
            goto out;
        } else {
            n = get_u32((const uint8_t *)buf + MAGIC_LEN);
            if (memcmp(sum, buf + len - SUM_BYTES, SUM_BYTES)) {
                snprintf(errstr, sizeof(errstr), "checksum mismatch (%zu bytes)", len);
            } else if (n > SCHED_MAX ||
                       len != MAGIC_LEN + 4 + n * SCHED_RECORD + SUM_BYTES) {
                snprintf(errstr, sizeof(errstr), "%zu records do not fit %zu bytes", n,
                         len);
            } else {
                err = NA_OK;
            }
        }
    }
    if (err) {
        count_corrupt(err == NA_ERR_IO
                          ? "every feed starts without schedule"
                          : "set aside as .corrupt; every feed starts without schedule",
                      path, errstr);
        if (err != NA_ERR_IO) {
            set_aside(path);
        }
        err = NA_OK;
        goto out;
    }
    if (!(nf = malloc((seen->cnt + 1) * sizeof(*nf)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < seen->tab_cap; i++) {
        if (seen->tab[i]) {
            nf[k].name = seen->tab[i]->name;
            nf[k++].f = seen->tab[i];
        }
    }
    qsort(nf, k, sizeof(*nf), cmp_name_feed);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *r = (const uint8_t *)buf + MAGIC_LEN + 4 + i * SCHED_RECORD;
        struct name_feed key = {r, NULL};
        struct name_feed *hit = bsearch(&key, nf, k, sizeof(*nf), cmp_name_feed);
        if (!hit) {
            continue; /* a feed whose file was never written or was set aside */
        }
        for (int j = 0; j < 2; j++) {
            int64_t v = get_i64(r + NAME_BYTES + 8 * j);
            if (v != SCHED_NONE &&
                json_object_set_new(hit->f->meta, sched_keys[j], json_integer(v))) {
                err = NA_ERR_NOMEM;
                goto out;
            }
        }
    }
out:
    free(nf);
    free(buf);
    return err;
}

static na_err_t write_schedule(na_seen_t *seen, char *errstr, size_t errstr_size) {
    char path[4096];
    size_t n = 0;
    uint8_t *buf = malloc(MAGIC_LEN + 4 + (seen->cnt + 1) * SCHED_RECORD + SUM_BYTES);
    uint8_t *p;
    na_err_t err;

    if (!buf) {
        return NA_ERR_NOMEM;
    }
    p = buf + MAGIC_LEN + 4;
    for (size_t i = 0; i < seen->tab_cap && n < SCHED_MAX; i++) {
        const struct sfeed *f = seen->tab[i];
        json_t *at[2];
        if (!f) {
            continue;
        }
        at[0] = json_object_get(f->meta, sched_keys[0]);
        at[1] = json_object_get(f->meta, sched_keys[1]);
        if (!at[0] && !at[1]) {
            continue;
        }
        memcpy(p, f->name, NAME_BYTES);
        for (int j = 0; j < 2; j++) {
            put_i64(p + NAME_BYTES + 8 * j,
                    at[j] ? (int64_t)json_integer_value(at[j]) : SCHED_NONE);
        }
        p += SCHED_RECORD;
        n++;
    }
    memcpy(buf, SCHED_MAGIC, MAGIC_LEN);
    put_u32(buf + MAGIC_LEN, (uint32_t)n);
    if (checksum(buf, (size_t)(p - buf), p)) {
        free(buf);
        return NA_ERR_NOMEM;
    }
    p += SUM_BYTES;
    path_of(seen, "schedule", path, sizeof(path));
    err = na_write_file_replace(path, buf, (size_t)(p - buf), errstr, errstr_size);
    free(buf);
    return err;
}

/* Keep the first error of a save. */
static void first_error(na_err_t *first, na_err_t err, const char *what, char *errstr,
                        size_t errstr_size) {
    if (err && !*first) {
        snprintf(errstr, errstr_size, "%s", what);
        *first = err;
    }
}

/* Write @p f's file: encoded, written to a temporary file, fsynced, renamed
 * over the old one. The folder's fsync, which makes the rename durable, is
 * the caller's (once per save). */
static na_err_t write_feed(const na_seen_t *seen, struct sfeed *f, char *errstr,
                           size_t errstr_size) {
    char path[4096], hex[NAME_HEX + 1];
    size_t len = 0;
    uint8_t *buf = NULL;
    na_err_t err = feed_encode(f, false, &buf, &len, errstr, errstr_size);
    if (err) {
        if (err == NA_ERR_NOMEM) {
            char shown[600];
            snprintf(errstr, errstr_size, "feed %s: no memory",
                     na_conf_shown_id_buf(f->id, shown, sizeof(shown)));
        }
        return err;
    }
    name_hex(f->name, hex);
    path_of(seen, hex, path, sizeof(path));
    err = na_write_file_replace(path, buf, len, errstr, errstr_size);
    free(buf);
    return err;
}

/* Temporary files of saves that were killed (na_write_file_atomic() names
 * them "<file>.tmp.<pid>"): the lock says no other process writes here. */
static size_t remove_tmp_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t removed = 0;
    char path[4096];
    if (!d) {
        return 0;
    }
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) || !strstr(de->d_name, ".tmp.")) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!unlink(path)) {
            removed++;
        }
    }
    closedir(d);
    return removed;
}

static na_err_t load_dir(na_seen_t *seen, char *errstr, size_t errstr_size) {
    DIR *d = opendir(seen->dir);
    struct dirent *de;
    na_err_t err = NA_OK;
    if (!d) {
        snprintf(errstr, errstr_size, "%s: %s", seen->dir, strerror(errno));
        return NA_ERR_IO;
    }
    while (!err && (de = readdir(d))) {
        uint8_t name[NAME_BYTES];
        if (name_parse(de->d_name, name)) {
            err = load_feed_file(seen, de->d_name, name);
        }
    }
    closedir(d);
    if (err) {
        snprintf(errstr, errstr_size, "%s: %s", seen->dir, na_err2str(err));
    }
    return err;
}

/* A seen.json of an older version: every feed into seen/, written at once,
 * then the file renamed aside. One that does not parse is set aside. */
static na_err_t migrate(na_seen_t *seen, const char *state_dir, char *errstr,
                        size_t errstr_size) {
    char path[4096], done[4096 + 16];
    json_t *root = NULL, *feeds;
    json_error_t jerr;
    struct stat st;
    const char *key;
    json_t *v;
    size_t n = 0, bad = 0;
    na_err_t err = NA_OK;

    snprintf(path, sizeof(path), "%s/seen.json", state_dir);
    if (stat(path, &st) && errno == ENOENT) {
        return NA_OK;
    }
    /* No size cap: the file is one an older version wrote, whatever its
     * size (its own cap refused some of them). */
    root = json_load_file(path, 0, &jerr);
    feeds = json_object_get(root, "feeds");
    if (!json_is_object(feeds)) {
        if (!root && access(path, R_OK)) {
            snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
            err = NA_ERR_IO;
            goto out;
        }
        char reason[300];
        snprintf(reason, sizeof(reason), "%d:%d: %s", jerr.line, jerr.column,
                 root ? "no \"feeds\" object" : jerr.text);
        count_corrupt("set aside as .corrupt, not migrated; its feeds start empty", path,
                      reason);
        set_aside(path);
        goto out;
    }
    json_int_t version = json_integer_value(json_object_get(root, "version"));
    json_object_foreach(feeds, key, v) {
        struct sfeed *f = NULL;
        char ferr[512];
        err = feed_from_json(key, v, version, &f, ferr, sizeof(ferr));
        if (err == NA_ERR_NOMEM) {
            goto out;
        }
        if (err) {
            /* One bad feed: reported, and the others migrate. */
            count_corrupt("this feed starts empty", path, ferr);
            bad++;
            err = NA_OK;
            continue;
        }
        if (feed_replace(seen, f)) {
            sfeed_free(f);
            err = NA_ERR_NOMEM;
            goto out;
        }
        n++;
    }
    if ((err = na_seen_save(seen, errstr, errstr_size))) {
        goto out;
    }
    snprintf(done, sizeof(done), "%s.migrated", path);
    if (rename(path, done)) {
        snprintf(errstr, errstr_size, "rename %s: %s", path, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    na_log(NA_LOG_INFO, "seen", "state_migrated", "from=%s to=%s feeds=%zu bad=%zu",
           na_log_q(done), na_log_q(seen->dir), n, bad);
out:
    json_decref(root);
    return err;
}

/* ---------------------------------------------------------------------------
 * load, save */

void na_seen_destroy(na_seen_t *seen) {
    if (!seen) {
        return;
    }
    for (size_t i = 0; i < seen->tab_cap; i++) {
        sfeed_free(seen->tab[i]);
    }
    free(seen->tab);
    free(seen->gone);
    free(seen->dir);
    if (seen->lock_fd >= 0) {
        close(seen->lock_fd); /* releases the flock */
    }
    free(seen);
}

na_err_t na_seen_load(const char *state_dir, na_seen_t **seenp, char *errstr,
                      size_t errstr_size) {
    na_seen_t *seen = calloc(1, sizeof(*seen));
    char path[4096];
    na_err_t err = NA_OK;

    *seenp = NULL;
    if (!seen) {
        return NA_ERR_NOMEM;
    }
    seen->lock_fd = -1;
    if (!state_dir) {
        goto out;
    }
    snprintf(path, sizeof(path), "%s/seen", state_dir);
    if (!(seen->dir = na_strdup(path))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (mkdir(seen->dir, 0700) && errno != EEXIST) {
        snprintf(errstr, errstr_size, "%s: %s", seen->dir, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    path_of(seen, "lock", path, sizeof(path));
    seen->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (seen->lock_fd < 0) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    if (flock(seen->lock_fd, LOCK_EX | LOCK_NB)) {
        snprintf(errstr, errstr_size, "%s: %s", seen->dir,
                 errno == EWOULDBLOCK ? "in use by another process (locked)"
                                      : strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    size_t removed =
        remove_tmp_files(seen->dir, "") + remove_tmp_files(state_dir, "seen.");
    if (removed) {
        na_log(NA_LOG_INFO, "seen", "state_tmp_removed", "dir=%s files=%zu",
               na_log_q(state_dir), removed);
    }
    if ((err = load_dir(seen, errstr, errstr_size)) || (err = load_schedule(seen)) ||
        (err = migrate(seen, state_dir, errstr, errstr_size))) {
        goto out;
    }
    /* What was read is what is on disk. */
    while (seen->dhead) {
        dirty_unlink(seen, seen->dhead);
    }
    seen->sched_dirty = false;
out:
    if (err) {
        if (err == NA_ERR_NOMEM) {
            snprintf(errstr, errstr_size, "no memory for the seen-state");
        }
        na_seen_destroy(seen);
        seen = NULL;
    }
    *seenp = seen;
    return err;
}

int na_seen_dirty(const na_seen_t *seen) {
    return seen->dhead || seen->gone_cnt ? 2 : seen->sched_dirty ? 1 : 0;
}

na_err_t na_seen_save_due(na_seen_t *seen, int64_t delay_ms, int64_t sched_delay_ms,
                          int64_t budget_ms, char *errstr, size_t errstr_size) {
    int64_t start = na_mono_ms();
    na_err_t first = NA_OK, err;
    char ferr[4096 + 256];
    char path[4096], hex[NAME_HEX + 1];
    bool changed = false; /* the folder: renames or removals to make durable */

    if (!seen->dir) { /* memory only: nothing to write */
        while (seen->dhead) {
            dirty_unlink(seen, seen->dhead);
        }
        seen->gone_cnt = 0;
        seen->sched_dirty = false;
        return NA_OK;
    }
    /* Removals first: a feed dropped and made again is then written after. */
    if (seen->gone_cnt && start - seen->gone_ms >= delay_ms) {
        for (size_t i = 0; i < seen->gone_cnt; i++) {
            name_hex(seen->gone[i], hex);
            path_of(seen, hex, path, sizeof(path));
            if (unlink(path) && errno != ENOENT) {
                snprintf(ferr, sizeof(ferr), "%s: %s", path, strerror(errno));
                first_error(&first, NA_ERR_IO, ferr, errstr, errstr_size);
            }
        }
        seen->gone_cnt = 0;
        changed = true;
    }
    /* Due feeds, oldest change first, each at most once per call (a failed
     * one goes to the end). A crash before the folder's fsync below leaves
     * the older files, whole. */
    size_t left = seen->cnt;
    while (seen->dhead && left-- > 0) {
        struct sfeed *f = seen->dhead;
        int64_t now = na_mono_ms();
        if (now - f->dirty_ms < delay_ms || (budget_ms > 0 && now - start >= budget_ms)) {
            break;
        }
        dirty_unlink(seen, f);
        err = write_feed(seen, f, ferr, sizeof(ferr));
        if (err) {
            mark_dirty(seen, f);
            first_error(&first, err, ferr, errstr, errstr_size);
        } else {
            changed = true;
        }
    }
    int64_t now = na_mono_ms();
    if (seen->sched_dirty && now - seen->sched_ms >= sched_delay_ms &&
        (budget_ms <= 0 || now - start < budget_ms)) {
        err = write_schedule(seen, ferr, sizeof(ferr));
        if (err) {
            seen->sched_ms = now;
            first_error(&first, err, ferr, errstr, errstr_size);
        } else {
            seen->sched_dirty = false;
            changed = true;
        }
    }
    if (changed && (err = na_fsync_dir(seen->dir, ferr, sizeof(ferr)))) {
        first_error(&first, err, ferr, errstr, errstr_size);
    }
    return first;
}

na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size) {
    return na_seen_save_due(seen, 0, 0, 0, errstr, errstr_size);
}

/* ---------------------------------------------------------------------------
 * fingerprints and verdicts */

/* Normalise one text into the hash input: lower-case ASCII, every run of
 * whitespace one space, no leading or trailing space. */
static void norm_append(struct na_buf *b, const char *s) {
    bool space = b->len > 0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isspace(c)) {
            space = b->len > 0;
            continue;
        }
        if (space) {
            na_buf_append(b, " ", 1);
            space = false;
        }
        char lc = (char)tolower(c);
        na_buf_append(b, &lc, 1);
    }
}

na_err_t na_seen_fingerprint(const struct na_article *a, char fp[NA_SEEN_FP_LEN + 1]) {
    struct na_buf b;
    char hex[NA_SHA256_HEX_LEN + 1];
    na_err_t err = NA_OK;
    const char *text = a->content && *a->content ? a->content : a->summary;
    fp[0] = '\0';
    if (!text || !*text) {
        /* A title alone: recurring titles ("Morning briefing") would make
         * different articles look the same. */
        return NA_OK;
    }
    na_buf_init(&b);
    norm_append(&b, a->title);
    na_buf_append(&b, "\n", 1);
    norm_append(&b, text);
    if (b.oom) {
        err = NA_ERR_NOMEM;
    } else if (b.len > NA_SEEN_FP_MIN_TEXT &&
               !(err = na_sha256_hex(b.data, b.len, hex))) {
        memcpy(fp, hex, NA_SEEN_FP_LEN);
        fp[NA_SEEN_FP_LEN] = '\0';
    }
    na_buf_cleanup(&b);
    return err;
}

/* Where @p article_id is in @p f (NULL: none) into *pos, -1 when absent.
 * @returns NA_OK or NA_ERR_NOMEM (its key could not be made). */
static na_err_t find_id(const struct sfeed *f, const char *article_id, int64_t *pos) {
    uint8_t k[ID_BYTES];
    *pos = -1;
    if (!f) {
        return NA_OK;
    }
    if (id_key(article_id, k)) {
        return NA_ERR_NOMEM;
    }
    *pos = entry_find(f, k);
    return NA_OK;
}

na_err_t na_seen_has(const na_seen_t *seen, const char *feed_id, const char *article_id,
                     bool *has) {
    int64_t pos;
    na_err_t err = find_id(feed_find(seen, feed_id), article_id, &pos);
    *has = pos >= 0;
    return err;
}

enum na_seen_verdict na_seen_check(na_seen_t *seen, const char *feed_id,
                                   const char *article_id, const char *fp, int *rev) {
    struct sfeed *f = feed_find(seen, feed_id);
    int64_t pos;
    bool has_fp = fp && *fp;
    uint8_t k[FPB];
    *rev = 1;
    if (find_id(f, article_id, &pos) || (has_fp && fp_key(fp, k))) {
        return NA_SEEN_FAILED;
    }
    if (pos >= 0) {
        const struct entry *e = &f->v[pos];
        *rev = e->rev < 1 ? 1 : e->rev > INT32_MAX - 1 ? INT32_MAX - 1 : (int)e->rev;
        /* A fingerprint where there was none is text that appeared: the
         * headline came first, the body later. A fingerprint that went
         * away is no news, and neither is one for an id whose fingerprint
         * is unknown (stored by an older version; na_seen_touch() adopts
         * it). */
        if (has_fp && (e->fp_state == FP_NONE ||
                       (e->fp_state == FP_SET && memcmp(e->fp, k, FPB)))) {
            (*rev)++;
            return NA_SEEN_EDITED;
        }
        return NA_SEEN_SAME;
    }
    if (has_fp && f && fx_has(f, k)) {
        return NA_SEEN_DUPLICATE;
    }
    return NA_SEEN_NEW;
}

void na_seen_fetch_begin(na_seen_t *seen, const char *feed_id) {
    struct sfeed *f = feed_find(seen, feed_id);
    if (f) {
        f->mark = f->seq;
        f->latest = 0;
    }
}

na_err_t na_seen_touch(na_seen_t *seen, const char *feed_id, const char *article_id,
                       const char *fp) {
    struct sfeed *f = feed_find(seen, feed_id);
    int64_t pos;
    if (find_id(f, article_id, &pos)) {
        return NA_ERR_NOMEM;
    }
    if (pos < 0) {
        return NA_OK;
    }
    renumber(f, (uint32_t)pos);
    struct entry *e = &f->v[pos];
    if (e->fp_state == FP_UNKNOWN && fp && *fp) {
        uint8_t fk[FPB];
        if (fp_key(fp, fk)) {
            return NA_ERR_NOMEM; /* still unknown */
        }
        memcpy(e->fp, fk, FPB);
        e->fp_state = FP_SET;
        fx_add(f, (uint32_t)pos);
        mark_dirty(seen, f);
    }
    return NA_OK;
}

size_t na_seen_count(const na_seen_t *seen, const char *feed_id) {
    struct sfeed *f = feed_find(seen, feed_id);
    return f ? f->cnt : 0;
}

size_t na_seen_feeds(const na_seen_t *seen) {
    return seen->cnt;
}

na_err_t na_seen_put(na_seen_t *seen, const char *feed_id, const char *article_id,
                     const char *fp, int rev) {
    struct sfeed *f;
    uint8_t k[ID_BYTES];
    uint8_t fk[FPB];
    bool has_fp = fp && *fp;
    na_err_t err = feed_get(seen, feed_id, &f);
    if (err) {
        return err;
    }
    if (id_key(article_id, k) || (has_fp && fp_key(fp, fk))) {
        return NA_ERR_NOMEM; /* nothing changed */
    }
    int64_t pos = entry_find(f, k);
    if (pos < 0 && (pos = entry_append(f, k)) < 0) {
        return NA_ERR_NOMEM;
    }
    struct entry *e = &f->v[pos];
    renumber(f, (uint32_t)pos);
    e->rev = rev < 1 ? 1 : (uint32_t)rev;
    if (has_fp) {
        if (e->fp_state == FP_SET && memcmp(e->fp, fk, FPB)) {
            f->fx_stale = true; /* the old fingerprint still points here */
        }
        memcpy(e->fp, fk, FPB);
        e->fp_state = FP_SET;
        fx_add(f, (uint32_t)pos);
    } else {
        if (e->fp_state == FP_SET) {
            f->fx_stale = true;
        }
        memset(e->fp, 0, FPB);
        e->fp_state = FP_NONE;
    }
    mark_dirty(seen, f);
    if (over_cap(f)) {
        evict(f);
    }
    return NA_OK;
}

na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id) {
    return na_seen_put(seen, feed_id, article_id, NULL, 1);
}

/* ---------------------------------------------------------------------------
 * members */

const char *na_seen_validator(const na_seen_t *seen, const char *feed_id,
                              const char *name) {
    return na_seen_get_str(seen, feed_id, name);
}

const char *na_seen_get_str(const na_seen_t *seen, const char *feed_id, const char *key) {
    struct sfeed *f = feed_find(seen, feed_id);
    return f ? json_string_value(json_object_get(f->meta, key)) : NULL;
}

int64_t na_seen_get_int(const na_seen_t *seen, const char *feed_id, const char *key,
                        int64_t def) {
    struct sfeed *f = feed_find(seen, feed_id);
    json_t *v = f ? json_object_get(f->meta, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* Set (NULL: remove) string member @p key of @p f, marking the change. */
static na_err_t set_str(na_seen_t *seen, struct sfeed *f, const char *key,
                        const char *value) {
    json_t *old = json_object_get(f->meta, key);
    if (!value) {
        if (old) {
            json_object_del(f->meta, key);
            mark_key(seen, f, key);
        }
        return NA_OK;
    }
    if (strlen(value) > NA_SEEN_MAX_VALUE_BYTES) {
        return NA_ERR_TOO_LARGE;
    }
    if (json_is_string(old) && !strcmp(json_string_value(old), value)) {
        return NA_OK;
    }
    json_t *s = json_string(value);
    if (!s) {
        return NA_ERR_INVALID; /* not UTF-8 */
    }
    if (json_object_set_new(f->meta, key, s)) {
        return NA_ERR_NOMEM;
    }
    mark_key(seen, f, key);
    return NA_OK;
}

na_err_t na_seen_set_validators(na_seen_t *seen, const char *feed_id, const char *etag,
                                const char *last_modified) {
    struct sfeed *f;
    na_err_t err = feed_get(seen, feed_id, &f);
    if (err) {
        return err;
    }
    /* One too long (or not UTF-8) to keep is as good as none; the old one
     * goes all the same. */
    const char *names[2] = {"etag", "last_modified"};
    const char *values[2] = {etag, last_modified};
    for (int i = 0; i < 2; i++) {
        err = set_str(seen, f, names[i], values[i]);
        if (err == NA_ERR_NOMEM) {
            return err;
        }
        if (err) {
            (void)set_str(seen, f, names[i], NULL);
        }
    }
    return NA_OK;
}

na_err_t na_seen_set_str(na_seen_t *seen, const char *feed_id, const char *key,
                         const char *value) {
    struct sfeed *f;
    na_err_t err;
    if (!in_list(str_keys, key)) {
        return NA_ERR_INVALID;
    }
    if ((err = feed_get(seen, feed_id, &f))) {
        return err;
    }
    return set_str(seen, f, key, value);
}

na_err_t na_seen_set_int(na_seen_t *seen, const char *feed_id, const char *key,
                         int64_t value) {
    struct sfeed *f;
    na_err_t err;
    if (!in_list(int_keys, key)) {
        return NA_ERR_INVALID;
    }
    if ((err = feed_get(seen, feed_id, &f))) {
        return err;
    }
    json_t *old = json_object_get(f->meta, key);
    if (json_is_integer(old) && json_integer_value(old) == value) {
        return NA_OK;
    }
    if (json_object_set_new(f->meta, key, json_integer(value))) {
        return NA_ERR_NOMEM;
    }
    mark_key(seen, f, key);
    return NA_OK;
}

/* What a feed's state learnt from one URL: its validators, where it moved,
 * its RSS hints, its schedule. */
static const char *const per_url_keys[] = {
    "etag",       "last_modified", "url",     "moved_from", "ttl",
    "skip_hours", "skip_days",     "next_at", NULL,
};

na_err_t na_seen_bind_url(na_seen_t *seen, const char *feed_id, const char *url,
                          bool *reset) {
    struct sfeed *f;
    na_err_t err = feed_get(seen, feed_id, &f);
    *reset = false;
    if (err) {
        return err;
    }
    const char *bound = json_string_value(json_object_get(f->meta, "source_url"));
    if (bound && !strcmp(bound, url)) {
        return NA_OK;
    }
    /* State of an older version has no "source_url"; a move it recorded
     * still names the source URL it came from. */
    const char *from = json_string_value(json_object_get(f->meta, "moved_from"));
    if (bound ? strcmp(bound, url) != 0 : (from && strcmp(from, url))) {
        for (size_t i = 0; per_url_keys[i]; i++) {
            if (json_object_get(f->meta, per_url_keys[i])) {
                json_object_del(f->meta, per_url_keys[i]);
                mark_key(seen, f, per_url_keys[i]);
            }
        }
        *reset = true;
    }
    if (!bound && !*reset) {
        /* The first binding of a feed is not worth a write of its own: it
         * goes with the feed's next change (a restart binds again). */
        if (strlen(url) > NA_SEEN_MAX_VALUE_BYTES) {
            return NA_ERR_TOO_LARGE;
        }
        json_t *v = json_string(url);
        if (!v) {
            return NA_ERR_INVALID;
        }
        return json_object_set_new(f->meta, "source_url", v) ? NA_ERR_NOMEM : NA_OK;
    }
    return set_str(seen, f, "source_url", url);
}

/* ---------------------------------------------------------------------------
 * one feed at a time (topic mode), pruning */

char *na_seen_feed_dump(const na_seen_t *seen, const char *feed_id, size_t *lenp) {
    struct sfeed *f = feed_find(seen, feed_id);
    uint8_t *buf = NULL;
    char errstr[256];
    *lenp = 0;
    if (f && feed_encode(f, true, &buf, lenp, errstr, sizeof(errstr))) {
        *lenp = 0;
    }
    return (char *)buf;
}

na_err_t na_seen_feed_load(na_seen_t *seen, const char *feed_id, const char *buf,
                           size_t len, char *errstr, size_t errstr_size) {
    struct sfeed *f = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    char why[512];
    na_err_t err;

    if (len > NA_MAX_STATE_BYTES) {
        char shown[600];
        snprintf(errstr, errstr_size, "feed %s: state of %zu bytes",
                 na_conf_shown_id_buf(feed_id, shown, sizeof(shown)), len);
        return NA_ERR_TOO_LARGE;
    }
    if (len >= MAGIC_LEN && !memcmp(buf, FEED_MAGIC, MAGIC_LEN)) {
        err = feed_decode((const uint8_t *)buf, len, feed_id, &f, why, sizeof(why));
    } else if (!(root = json_loadb(buf, len, 0, &jerr))) {
        snprintf(why, sizeof(why), "%s", jerr.text);
        err = NA_ERR_PARSE;
    } else {
        err = feed_from_json(feed_id, root, 0, &f, why, sizeof(why));
    }
    json_decref(root);
    if (err) {
        char shown[600];
        snprintf(errstr, errstr_size, "feed %s: corrupt state: %s",
                 na_conf_shown_id_buf(feed_id, shown, sizeof(shown)),
                 err == NA_ERR_NOMEM ? "no memory" : why);
        return err;
    }
    if (feed_replace(seen, f)) {
        sfeed_free(f);
        return NA_ERR_NOMEM;
    }
    return NA_OK;
}

void na_seen_feed_drop(na_seen_t *seen, const char *feed_id) {
    struct sfeed *f = feed_find(seen, feed_id);
    if (f) {
        feed_forget(seen, f, false);
    }
}

size_t na_seen_prune(na_seen_t *seen, na_seen_active_cb *active, void *ctx, int64_t now_s,
                     int64_t grace_s) {
    struct sfeed **drop = malloc((seen->cnt + 1) * sizeof(*drop));
    size_t n = 0;
    if (!drop) {
        return 0;
    }
    for (size_t i = 0; i < seen->tab_cap; i++) {
        struct sfeed *f = seen->tab[i];
        if (!f) {
            continue;
        }
        json_t *at = json_object_get(f->meta, "active_at");
        if (active(f->id, ctx)) {
            if (!json_is_integer(at) || json_integer_value(at) != now_s) {
                json_object_set_new(f->meta, "active_at", json_integer(now_s));
                mark_sched(seen);
            }
            continue;
        }
        if (!json_is_integer(at)) {
            json_object_set_new(f->meta, "active_at", json_integer(now_s));
            mark_sched(seen);
            at = json_object_get(f->meta, "active_at");
        }
        if (now_s - json_integer_value(at) > grace_s ||
            seen->cnt - n > NA_SEEN_MAX_FEEDS) {
            drop[n++] = f;
        }
    }
    for (size_t i = 0; i < n; i++) {
        feed_forget(seen, drop[i], false);
    }
    free(drop);
    return n;
}
