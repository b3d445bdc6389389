#include "seen.h"

#include <jansson.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "newsalert/limits.h"
#include "newsalert/util.h"

/* In memory the state is the JSON document itself:
 *   {"version": 1, "feeds": {"<feed id>": {"etag": "...", "last_modified": "...",
 *                                         "seq": N, "ids": {"<article id>": seq}}}}
 * "ids" is an object so that lookups are hashed; seq orders eviction. */
struct na_seen_s {
    char *path;
    json_t *root;
    bool dirty;
};

void na_seen_destroy(na_seen_t *seen) {
    if (!seen) {
        return;
    }
    free(seen->path);
    json_decref(seen->root);
    free(seen);
}

na_err_t na_seen_load(const char *path, na_seen_t **seenp, char *errstr,
                      size_t errstr_size) {
    na_seen_t *seen = calloc(1, sizeof(*seen));
    char *buf = NULL;
    size_t len = 0;
    json_error_t jerr;
    struct stat st;
    na_err_t err = NA_OK;

    if (!seen || !(seen->path = na_strdup(path))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (stat(path, &st) && errno == ENOENT) {
        seen->root = json_pack("{s:i, s:{}}", "version", 1, "feeds");
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
out:
    free(buf);
    if (err) {
        na_seen_destroy(seen);
        seen = NULL;
    }
    *seenp = seen;
    return err;
}

na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size) {
    if (!seen->dirty) {
        return NA_OK;
    }
    char *text = json_dumps(seen->root, JSON_COMPACT);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    na_err_t err = na_write_file_atomic(seen->path, text, strlen(text), errstr, errstr_size);
    free(text);
    if (!err) {
        seen->dirty = false;
    }
    return err;
}

static json_t *feed_obj(const na_seen_t *seen, const char *feed_id) {
    return json_object_get(json_object_get(seen->root, "feeds"), feed_id);
}

static json_t *feed_obj_create(na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    if (f) {
        return f;
    }
    f = json_pack("{s:i, s:{}}", "seq", 0, "ids");
    if (!f || json_object_set_new(json_object_get(seen->root, "feeds"), feed_id, f)) {
        return NULL;
    }
    return f;
}

bool na_seen_has(const na_seen_t *seen, const char *feed_id, const char *article_id) {
    json_t *f = feed_obj(seen, feed_id);
    return f && json_object_get(json_object_get(f, "ids"), article_id) != NULL;
}

size_t na_seen_count(const na_seen_t *seen, const char *feed_id) {
    json_t *f = feed_obj(seen, feed_id);
    return f ? json_object_size(json_object_get(f, "ids")) : 0;
}

/* Forget the oldest tenth of the ids once a feed is over the cap, so the
 * O(n) scan runs once per NA_SEEN_IDS_PER_FEED / 10 additions. */
static void evict(json_t *ids) {
    size_t n = json_object_size(ids);
    size_t drop = n - NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10;
    json_int_t *seqs = malloc(n * sizeof(*seqs));
    const char *key;
    json_t *v;
    void *tmp;
    size_t i = 0;
    if (!seqs) {
        return;
    }
    json_object_foreach(ids, key, v) {
        seqs[i++] = json_integer_value(v);
    }
    /* The cut-off is the drop-th smallest sequence number: selection by a
     * partial sort is plenty at these sizes. */
    for (size_t a = 0; a < drop; a++) {
        size_t min = a;
        for (size_t b = a + 1; b < n; b++) {
            if (seqs[b] < seqs[min]) {
                min = b;
            }
        }
        json_int_t t = seqs[a];
        seqs[a] = seqs[min];
        seqs[min] = t;
    }
    json_int_t cutoff = seqs[drop - 1];
    free(seqs);
    json_object_foreach_safe(ids, tmp, key, v) {
        if (json_integer_value(v) <= cutoff) {
            json_object_del(ids, key);
        }
    }
}

na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id) {
    json_t *f = feed_obj_create(seen, feed_id);
    if (!f) {
        return NA_ERR_NOMEM;
    }
    json_t *ids = json_object_get(f, "ids");
    json_int_t seq = json_integer_value(json_object_get(f, "seq")) + 1;
    if (json_object_set_new(f, "seq", json_integer(seq)) ||
        json_object_set_new(ids, article_id, json_integer(seq))) {
        return NA_ERR_NOMEM;
    }
    if (json_object_size(ids) > NA_SEEN_IDS_PER_FEED) {
        evict(ids);
    }
    seen->dirty = true;
    return NA_OK;
}

const char *na_seen_validator(const na_seen_t *seen, const char *feed_id, const char *name) {
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
    if (!f || set_or_del(f, "etag", etag) || set_or_del(f, "last_modified", last_modified)) {
        return NA_ERR_NOMEM;
    }
    seen->dirty = true;
    return NA_OK;
}
