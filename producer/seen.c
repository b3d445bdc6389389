#include "seen.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/util.h"

/* In memory the state is the JSON document itself (format in seen.h): "ids"
 * and "fps" are objects so that lookups are hashed; seq orders eviction. */
struct na_seen_s {
    char *path; /* NULL: memory only */
    json_t *root;
    int dirty; /* 0 clean, 1 schedules only, 2 changes that matter */
};

#define SEEN_VERSION 3

static void mark(na_seen_t *seen, int level) {
    if (seen->dirty < level) {
        seen->dirty = level;
    }
}

void na_seen_destroy(na_seen_t *seen) {
    if (!seen) {
        return;
    }
    free(seen->path);
    json_decref(seen->root);
    free(seen);
}

/* Bring one feed object of a file of @p version to version 3: ids map to
 * [seq, fp|null|false, rev], and "fps" exists. Versions 1 and 2 do not say
 * whether an id without fingerprint had no text (null in version 3) or was
 * stored before fingerprints existed: such ids become false, "unknown".
 * @returns 0, or -1 when the object is not a feed state. */
static int upgrade_feed(json_t *f, json_int_t version) {
    json_t *ids = json_object_get(f, "ids");
    const char *key;
    json_t *v;
    if (!json_is_object(f)) {
        return -1;
    }
    if (!ids) {
        if (json_object_set_new(f, "ids", json_object())) {
            return -1;
        }
        ids = json_object_get(f, "ids");
    }
    if (!json_is_object(ids)) {
        return -1;
    }
    if (!json_is_object(json_object_get(f, "fps")) &&
        json_object_set_new(f, "fps", json_object())) {
        return -1;
    }
    json_object_foreach(ids, key, v) {
        if (json_is_integer(v)) {
            json_t *n = json_pack("[I, b, i]", (json_int_t)json_integer_value(v), 0, 1);
            if (!n || json_object_set_new(ids, key, n)) {
                return -1;
            }
        } else if (!json_is_array(v) || !json_is_integer(json_array_get(v, 0))) {
            return -1;
        } else if (version < 3 && json_is_null(json_array_get(v, 1)) &&
                   json_array_set_new(v, 1, json_false())) {
            return -1;
        }
    }
    if (!json_is_integer(json_object_get(f, "seq")) &&
        json_object_set_new(f, "seq", json_integer(0))) {
        return -1;
    }
    /* Without a mark every id belongs to fetches before the latest one. */
    if (!json_is_integer(json_object_get(f, "mark")) &&
        (json_object_set_new(
             f, "mark", json_integer(json_integer_value(json_object_get(f, "seq")))) ||
         json_object_set_new(f, "latest", json_integer(0)))) {
        return -1;
    }
    return 0;
}

na_err_t na_seen_load(const char *path, na_seen_t **seenp, char *errstr,
                      size_t errstr_size) {
    na_seen_t *seen = calloc(1, sizeof(*seen));
    char *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    struct stat st;
    const char *key;
    json_t *v;
    na_err_t err = NA_OK;

    if (!seen || (path && !(seen->path = na_strdup(path)))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!path || (stat(path, &st) && errno == ENOENT)) {
        seen->root = json_pack("{s:i, s:{}}", "version", SEEN_VERSION, "feeds");
        if (!seen->root) {
            err = NA_ERR_NOMEM;
        }
        goto out;
    }
    if ((err = na_read_file(path, NA_MAX_STATE_BYTES, &buf, &len, errstr, errstr_size))) {
        goto out;
    }
    seen->root = json_loadb(buf, len, 0, &jerr);
    if (!seen->root || !json_is_object(json_object_get(seen->root, "feeds"))) {
        snprintf(errstr, errstr_size, "%s:%d:%d: corrupt seen-state: %s", path, jerr.line,
                 jerr.column, seen->root ? "no \"feeds\" object" : jerr.text);
        err = NA_ERR_PARSE;
        goto out;
    }
    json_int_t version = json_integer_value(json_object_get(seen->root, "version"));
    json_object_foreach(json_object_get(seen->root, "feeds"), key, v) {
        if (upgrade_feed(v, version)) {
            snprintf(errstr, errstr_size, "%s: corrupt seen-state: feed %s", path, key);
            err = NA_ERR_PARSE;
            goto out;
        }
    }
    json_object_set_new(seen->root, "version", json_integer(SEEN_VERSION));
out:
    free(buf);
    if (err) {
        na_seen_destroy(seen);
        seen = NULL;
    }
    *seenp = seen;
    return err;
}

int na_seen_dirty(const na_seen_t *seen) {
    return seen->dirty;
}

na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size) {
    if (!seen->dirty || !seen->path) {
        seen->dirty = 0;
        return NA_OK;
    }
    char *text = json_dumps(seen->root, JSON_COMPACT);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    na_err_t err =
        na_write_file_atomic(seen->path, text, strlen(text), errstr, errstr_size);
    free(text);
    if (!err) {
        seen->dirty = 0;
    }
    return err;
}

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

bool na_seen_fingerprint(const struct na_article *a, char fp[NA_SEEN_FP_LEN + 1]) {
    struct na_buf b;
    char hex[NA_SHA256_HEX_LEN + 1];
    bool ok = false;
    const char *text = a->content && *a->content ? a->content : a->summary;
    fp[0] = '\0';
    if (!text || !*text) {
        /* A title alone: recurring titles ("Morning briefing") would make
         * different articles look the same. */
        return false;
    }
    na_buf_init(&b);
    norm_append(&b, a->title);
    na_buf_append(&b, "\n", 1);
    norm_append(&b, text);
    if (!b.oom && b.len > NA_SEEN_FP_MIN_TEXT) {
        na_sha256_hex(b.data, b.len, hex);
        memcpy(fp, hex, NA_SEEN_FP_LEN);
        fp[NA_SEEN_FP_LEN] = '\0';
        ok = true;
    }
    na_buf_cleanup(&b);
    return ok;
}

static json_t *feed_obj(const na_seen_t *seen, const char *feed_id) {
    return json_object_get(json_object_get(seen->root, "feeds"), feed_id);
}

static json_t *feed_obj_create(na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    if (f) {
        return f;
    }
    f = json_pack("{s:i, s:i, s:i, s:{}, s:{}}", "seq", 0, "mark", 0, "latest", 0, "ids",
                  "fps");
    if (!f || json_object_set_new(json_object_get(seen->root, "feeds"), feed_id, f)) {
        return NULL;
    }
    return f;
}

bool na_seen_has(const na_seen_t *seen, const char *feed_id, const char *article_id) {
    json_t *f = feed_obj(seen, feed_id);
    return f && json_object_get(json_object_get(f, "ids"), article_id) != NULL;
}

enum na_seen_verdict na_seen_check(const na_seen_t *seen, const char *feed_id,
                                   const char *article_id, const char *fp, int *rev) {
    json_t *f = feed_obj(seen, feed_id);
    json_t *entry = json_object_get(json_object_get(f, "ids"), article_id);
    *rev = 1;
    if (entry) {
        json_t *old = json_array_get(entry, 1);
        *rev = (int)json_integer_value(json_array_get(entry, 2));
        if (*rev < 1) {
            *rev = 1;
        }
        /* A fingerprint where there was none is text that appeared: the
         * headline came first, the body later. A fingerprint that went
         * away is no news, and neither is one for an id whose fingerprint
         * is unknown (false: stored by an older version). */
        if (fp && *fp &&
            (json_is_null(old) ||
             (json_is_string(old) && strcmp(json_string_value(old), fp)))) {
            (*rev)++;
            return NA_SEEN_EDITED;
        }
        return NA_SEEN_SAME;
    }
    if (fp && *fp && json_object_get(json_object_get(f, "fps"), fp)) {
        return NA_SEEN_DUPLICATE;
    }
    return NA_SEEN_NEW;
}

size_t na_seen_count(const na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    return f ? json_object_size(json_object_get(f, "ids")) : 0;
}

size_t na_seen_feeds(const na_seen_t *seen) {
    return json_object_size(json_object_get(seen->root, "feeds"));
}

static int cmp_seq(const void *a, const void *b) {
    json_int_t x = *(const json_int_t *)a;
    json_int_t y = *(const json_int_t *)b;
    return x < y ? -1 : x > y;
}

static json_int_t int_member(const json_t *f, const char *key) {
    return json_integer_value(json_object_get(f, key));
}

/* Drop the ids whose sequence number is at most @p cutoff, each with its
 * fingerprint when it owns it. */
static void drop_upto(json_t *f, json_int_t cutoff) {
    json_t *ids = json_object_get(f, "ids");
    json_t *fps = json_object_get(f, "fps");
    const char *key;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(ids, tmp, key, v) {
        if (json_integer_value(json_array_get(v, 0)) <= cutoff) {
            const char *fp = json_string_value(json_array_get(v, 1));
            const char *owner = fp ? json_string_value(json_object_get(fps, fp)) : NULL;
            if (owner && !strcmp(owner, key)) {
                json_object_del(fps, fp);
            }
            json_object_del(ids, key);
        }
    }
}

/* The sequence number below which @p keep of the ids with a sequence
 * number at most @p upto stay, or -1 when there are no more than that. */
static json_int_t cutoff_keeping(json_t *f, json_int_t upto, size_t keep) {
    json_t *ids = json_object_get(f, "ids");
    json_int_t *seqs = malloc((json_object_size(ids) + 1) * sizeof(*seqs));
    json_int_t cutoff = -1;
    const char *key;
    json_t *v;
    size_t n = 0;
    if (!seqs) {
        return -1;
    }
    json_object_foreach(ids, key, v) {
        json_int_t seq = json_integer_value(json_array_get(v, 0));
        if (seq <= upto) {
            seqs[n++] = seq;
        }
    }
    if (n > keep) {
        qsort(seqs, n, sizeof(*seqs), cmp_seq);
        cutoff = seqs[n - keep - 1];
    }
    free(seqs);
    return cutoff;
}

/* Ids of the latest fetch (sequence number above "mark") all stay: the
 * feed still carries them. Of the others the NA_SEEN_IDS_PER_FEED most
 * recently seen stay; the pass runs once a tenth more piled up, so its
 * O(n log n) is paid once per NA_SEEN_IDS_PER_FEED / 10 additions. The
 * hard cap NA_SEEN_MAX_IDS_PER_FEED, which no caller that touches only the
 * items of one document reaches, drops the oldest whatever they are. */
static void evict(json_t *f) {
    json_int_t mark = int_member(f, "mark");
    json_int_t cutoff = cutoff_keeping(f, mark, NA_SEEN_IDS_PER_FEED);
    if (cutoff >= 0) {
        drop_upto(f, cutoff);
    }
    size_t n = json_object_size(json_object_get(f, "ids"));
    if (n > NA_SEEN_MAX_IDS_PER_FEED) {
        cutoff = cutoff_keeping(f, int_member(f, "seq"), NA_SEEN_MAX_IDS_PER_FEED);
        if (cutoff >= 0) {
            drop_upto(f, cutoff);
        }
        if (cutoff >= mark) {
            json_object_set_new(f, "mark", json_integer(cutoff));
            json_object_set_new(
                f, "latest",
                json_integer((json_int_t)json_object_size(json_object_get(f, "ids"))));
        }
    }
}

static bool over_cap(const json_t *f) {
    size_t n = json_object_size(json_object_get(f, "ids"));
    size_t latest = (size_t)int_member(f, "latest");
    return n > NA_SEEN_MAX_IDS_PER_FEED ||
           n - (latest < n ? latest : n) >
               NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10;
}

void na_seen_fetch_begin(na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    if (f) {
        json_object_set_new(f, "mark", json_integer(int_member(f, "seq")));
        json_object_set_new(f, "latest", json_integer(0));
    }
}

/* Give @p entry the next sequence number; count it in "latest" when it
 * was not yet seen since the mark. */
static int renumber(json_t *f, json_t *entry) {
    json_int_t seq = int_member(f, "seq") + 1;
    if (entry && json_integer_value(json_array_get(entry, 0)) > int_member(f, "mark")) {
        return 0; /* already seen in this fetch */
    }
    if (json_object_set_new(f, "seq", json_integer(seq)) ||
        json_object_set_new(f, "latest", json_integer(int_member(f, "latest") + 1)) ||
        (entry && json_array_set_new(entry, 0, json_integer(seq)))) {
        return -1;
    }
    return 0;
}

void na_seen_touch(na_seen_t *seen, const char *feed_id, const char *article_id) {
    json_t *f = feed_obj(seen, feed_id);
    json_t *entry = json_object_get(json_object_get(f, "ids"), article_id);
    if (entry) {
        (void)renumber(f, entry);
    }
}

na_err_t na_seen_put(na_seen_t *seen, const char *feed_id, const char *article_id,
                     const char *fp, int rev) {
    json_t *f = feed_obj_create(seen, feed_id);
    if (!f) {
        return NA_ERR_NOMEM;
    }
    json_t *ids = json_object_get(f, "ids");
    json_t *fps = json_object_get(f, "fps");
    json_t *old = json_object_get(ids, article_id);
    bool has_fp = fp && *fp;
    if (renumber(f, old)) {
        return NA_ERR_NOMEM;
    }
    json_int_t seq =
        old ? json_integer_value(json_array_get(old, 0)) : int_member(f, "seq");
    json_t *entry = json_pack("[I, s?, i]", seq, has_fp ? fp : NULL, rev < 1 ? 1 : rev);
    if (!entry || json_object_set_new(ids, article_id, entry) ||
        (has_fp && json_object_set_new(fps, fp, json_string(article_id)))) {
        return NA_ERR_NOMEM;
    }
    if (over_cap(f)) {
        evict(f);
    }
    mark(seen, 2);
    return NA_OK;
}

na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id) {
    return na_seen_put(seen, feed_id, article_id, NULL, 1);
}

const char *na_seen_validator(const na_seen_t *seen, const char *feed_id,
                              const char *name) {
    return json_string_value(json_object_get(feed_obj(seen, feed_id), name));
}

static int set_or_del(json_t *obj, const char *key, const char *value) {
    if (!value) {
        json_object_del(obj, key);
        return 0;
    }
    return json_object_set_new(obj, key, json_string(value));
}

na_err_t na_seen_set_validators(na_seen_t *seen, const char *feed_id, const char *etag,
                                const char *last_modified) {
    json_t *f = feed_obj_create(seen, feed_id);
    if (!f || set_or_del(f, "etag", etag) ||
        set_or_del(f, "last_modified", last_modified)) {
        return NA_ERR_NOMEM;
    }
    mark(seen, 2);
    return NA_OK;
}

const char *na_seen_get_str(const na_seen_t *seen, const char *feed_id, const char *key) {
    return json_string_value(json_object_get(feed_obj(seen, feed_id), key));
}

na_err_t na_seen_set_str(na_seen_t *seen, const char *feed_id, const char *key,
                         const char *value) {
    json_t *f = feed_obj_create(seen, feed_id);
    if (!f || set_or_del(f, key, value)) {
        return NA_ERR_NOMEM;
    }
    mark(seen, 2);
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
    json_t *f = feed_obj_create(seen, feed_id);
    *reset = false;
    if (!f) {
        return NA_ERR_NOMEM;
    }
    const char *bound = json_string_value(json_object_get(f, "source_url"));
    if (bound && !strcmp(bound, url)) {
        return NA_OK;
    }
    /* State of an older version has no "source_url"; a move it recorded
     * still names the source URL it came from. */
    const char *from = json_string_value(json_object_get(f, "moved_from"));
    if (bound ? strcmp(bound, url) != 0 : (from && strcmp(from, url))) {
        for (size_t i = 0; per_url_keys[i]; i++) {
            json_object_del(f, per_url_keys[i]);
        }
        *reset = true;
    }
    if (json_object_set_new(f, "source_url", json_string(url))) {
        return NA_ERR_NOMEM;
    }
    mark(seen, 2);
    return NA_OK;
}

int64_t na_seen_get_int(const na_seen_t *seen, const char *feed_id, const char *key,
                        int64_t def) {
    json_t *v = json_object_get(feed_obj(seen, feed_id), key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

na_err_t na_seen_set_int(na_seen_t *seen, const char *feed_id, const char *key,
                         int64_t value, bool soft) {
    json_t *f = feed_obj_create(seen, feed_id);
    json_t *old = f ? json_object_get(f, key) : NULL;
    if (!f) {
        return NA_ERR_NOMEM;
    }
    if (json_is_integer(old) && json_integer_value(old) == value) {
        return NA_OK;
    }
    if (json_object_set_new(f, key, json_integer(value))) {
        return NA_ERR_NOMEM;
    }
    mark(seen, soft ? 1 : 2);
    return NA_OK;
}

char *na_seen_feed_dump(const na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    if (!f || json_object_set_new(f, "version", json_integer(SEEN_VERSION))) {
        return NULL;
    }
    return json_dumps(f, JSON_COMPACT);
}

na_err_t na_seen_feed_load(na_seen_t *seen, const char *feed_id, const char *buf,
                           size_t len, char *errstr, size_t errstr_size) {
    json_error_t jerr;
    json_t *f;
    if (len > NA_MAX_STATE_BYTES) {
        snprintf(errstr, errstr_size, "feed %s: state of %zu bytes", feed_id, len);
        return NA_ERR_PARSE;
    }
    f = json_loadb(buf, len, 0, &jerr);
    if (!f || upgrade_feed(f, json_integer_value(json_object_get(f, "version")))) {
        snprintf(errstr, errstr_size, "feed %s: corrupt state: %s", feed_id,
                 f ? "not a feed state" : jerr.text);
        json_decref(f);
        return NA_ERR_PARSE;
    }
    if (json_object_set_new(json_object_get(seen->root, "feeds"), feed_id, f)) {
        return NA_ERR_NOMEM;
    }
    mark(seen, 2);
    return NA_OK;
}

void na_seen_feed_drop(na_seen_t *seen, const char *feed_id) {
    if (!json_object_del(json_object_get(seen->root, "feeds"), feed_id)) {
        mark(seen, 2);
    }
}

size_t na_seen_prune(na_seen_t *seen, na_seen_active_cb *active, void *ctx, int64_t now_s,
                     int64_t grace_s) {
    json_t *feeds = json_object_get(seen->root, "feeds");
    const char *key;
    json_t *f;
    void *tmp;
    size_t dropped = 0;
    json_object_foreach_safe(feeds, tmp, key, f) {
        json_t *at = json_object_get(f, "active_at");
        if (active(key, ctx)) {
            if (!json_is_integer(at) || json_integer_value(at) != now_s) {
                json_object_set_new(f, "active_at", json_integer(now_s));
                mark(seen, 1);
            }
            continue;
        }
        if (!json_is_integer(at)) {
            json_object_set_new(f, "active_at", json_integer(now_s));
            mark(seen, 1);
            at = json_object_get(f, "active_at");
        }
        if (now_s - json_integer_value(at) > grace_s ||
            json_object_size(feeds) > NA_SEEN_MAX_FEEDS) {
            json_object_del(feeds, key);
            mark(seen, 2);
            dropped++;
        }
    }
    return dropped;
}
