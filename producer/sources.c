#include "sources.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/config.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

void na_source_cleanup(struct na_source *src) {
    if (!src) {
        return;
    }
    free(src->id);
    free(src->name);
    free(src->url);
    for (size_t h = 0; h < src->headers_cnt; h++) {
        free(src->headers[h]);
    }
    free(src->headers);
    free(src->json);
    memset(src, 0, sizeof(*src));
}

void na_sources_cleanup(struct na_sources *s) {
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->cnt; i++) {
        na_source_cleanup(&s->v[i]);
    }
    free(s->v);
    free(s->by_id);
    s->v = NULL;
    s->by_id = NULL;
    s->cnt = 0;
}

/* Seconds or a duration string, from NA_SOURCE_MIN_INTERVAL_MS to
 * NA_SOURCE_MAX_INTERVAL_MS in either form: the schedule adds it to the
 * clock, and stale_after is three times it. */
static na_err_t parse_interval(json_t *v, int64_t *ms) {
    if (json_is_integer(v)) {
        json_int_t sec = json_integer_value(v);
        if (sec < 1 || sec > NA_SOURCE_MAX_INTERVAL_MS / 1000) {
            return NA_ERR_INVALID;
        }
        *ms = (int64_t)sec * 1000;
        return NA_OK;
    }
    if (json_is_string(v) && !na_duration_parse_ms(json_string_value(v), ms) &&
        *ms >= NA_SOURCE_MIN_INTERVAL_MS && *ms <= NA_SOURCE_MAX_INTERVAL_MS) {
        return NA_OK;
    }
    return NA_ERR_INVALID;
}

static na_err_t parse_source(json_t *obj, size_t idx, struct na_source *src, char *errstr,
                             size_t errstr_size) {
    const char *key;
    json_t *v;

    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "sources[%zu]: not an object", idx);
        return NA_ERR_CONFIG;
    }
    bool min_chars_set = false;
    src->interval_ms = NA_SOURCE_DEFAULT_INTERVAL_MS;
    json_object_foreach(obj, key, v) {
        if (!strcmp(key, "id") || !strcmp(key, "name") || !strcmp(key, "url")) {
            if (!json_is_string(v) || !json_string_length(v)) {
                snprintf(errstr, errstr_size, "sources[%zu].%s: not a non-empty string",
                         idx, key);
                return NA_ERR_CONFIG;
            }
            /* The id is the key of the source's records in topic mode, and
             * is its url by default. Named by index: either may hold a
             * secret. */
            if (strcmp(key, "name") && json_string_length(v) > NA_MAX_URL_BYTES) {
                snprintf(errstr, errstr_size, "sources[%zu].%s: longer than %u bytes",
                         idx, key, NA_MAX_URL_BYTES);
                return NA_ERR_CONFIG;
            }
            char **dst = !strcmp(key, "id")     ? &src->id
                         : !strcmp(key, "name") ? &src->name
                                                : &src->url;
            *dst = na_strdup(json_string_value(v));
            if (!*dst) {
                return NA_ERR_NOMEM;
            }
        } else if (!strcmp(key, "interval")) {
            if (parse_interval(v, &src->interval_ms)) {
                snprintf(errstr, errstr_size,
                         "sources[%zu].interval: want seconds or a duration like "
                         "\"90s\", \"5m\" (1s to 30d)",
                         idx);
                return NA_ERR_CONFIG;
            }
        } else if (!strcmp(key, "critical") || !strcmp(key, "allow_private_redirects") ||
                   !strcmp(key, "allow_private_addresses")) {
            if (!json_is_boolean(v)) {
                snprintf(errstr, errstr_size, "sources[%zu].%s: want true or false", idx,
                         key);
                return NA_ERR_CONFIG;
            }
            *(!strcmp(key, "critical")                  ? &src->critical
              : !strcmp(key, "allow_private_redirects") ? &src->allow_private_redirects
                                                        : &src->allow_private_addresses) =
                json_is_true(v);
        } else if (!strcmp(key, "full_text")) {
            if (json_is_boolean(v)) {
                src->full_text = json_is_true(v) ? NA_FULLTEXT_ON : NA_FULLTEXT_OFF;
            } else if (json_is_string(v) && !strcmp(json_string_value(v), "auto")) {
                src->full_text = NA_FULLTEXT_AUTO;
            } else {
                snprintf(errstr, errstr_size,
                         "sources[%zu].full_text: want true, false or \"auto\"", idx);
                return NA_ERR_CONFIG;
            }
        } else if (!strcmp(key, "full_text_min_chars")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > (json_int_t)NA_MAX_CONTENT_BYTES) {
                snprintf(errstr, errstr_size,
                         "sources[%zu].full_text_min_chars: want a number of characters "
                         "from 0 to %u",
                         idx, NA_MAX_CONTENT_BYTES);
                return NA_ERR_CONFIG;
            }
            src->full_text_min_chars = (size_t)json_integer_value(v);
            min_chars_set = true;
        } else if (!strcmp(key, "stale_after")) {
            if (parse_interval(v, &src->stale_after_ms)) {
                snprintf(errstr, errstr_size,
                         "sources[%zu].stale_after: want seconds or a duration like "
                         "\"30m\", \"2h\" (1s to 30d)",
                         idx);
                return NA_ERR_CONFIG;
            }
        } else if (!strcmp(key, "headers")) {
            const char *hname;
            json_t *hv;
            if (!json_is_object(v)) {
                snprintf(errstr, errstr_size, "sources[%zu].headers: not an object", idx);
                return NA_ERR_CONFIG;
            }
            json_object_foreach(v, hname, hv) {
                struct na_buf line;
                if (!json_is_string(hv) || strpbrk(hname, ":\r\n ") ||
                    strpbrk(json_string_value(hv), "\r\n")) {
                    snprintf(errstr, errstr_size,
                             "sources[%zu].headers.%s: not a valid header", idx, hname);
                    return NA_ERR_CONFIG;
                }
                na_buf_init(&line);
                na_buf_printf(&line, "%s: %s", hname, json_string_value(hv));
                char **n = realloc(src->headers, (src->headers_cnt + 1) * sizeof(*n));
                if (!n) {
                    na_buf_cleanup(&line);
                    return NA_ERR_NOMEM;
                }
                src->headers = n;
                n[src->headers_cnt] = na_buf_steal(&line);
                if (!n[src->headers_cnt]) {
                    return NA_ERR_NOMEM;
                }
                src->headers_cnt++;
            }
        } else {
            snprintf(errstr, errstr_size, "sources[%zu]: unknown key \"%s\"", idx, key);
            return NA_ERR_CONFIG;
        }
    }
    if (!src->url) {
        snprintf(errstr, errstr_size, "sources[%zu]: missing \"url\"", idx);
        return NA_ERR_CONFIG;
    }
    if (!min_chars_set) {
        src->full_text_min_chars = NA_SOURCE_DEFAULT_FULL_TEXT_MIN_CHARS;
    }
    if (!src->stale_after_ms) {
        src->stale_after_ms = 3 * src->interval_ms;
        if (src->stale_after_ms < 15 * 60 * 1000) {
            src->stale_after_ms = 15 * 60 * 1000;
        }
    }
    if (strncasecmp(src->url, "http://", 7) && strncasecmp(src->url, "https://", 8)) {
        snprintf(errstr, errstr_size, "sources[%zu].url: only http and https are fetched",
                 idx);
        return NA_ERR_CONFIG;
    }
    if (!src->id && !(src->id = na_strdup(src->url))) {
        return NA_ERR_NOMEM;
    }
    if (!src->name && !(src->name = na_strdup(src->id))) {
        return NA_ERR_NOMEM;
    }
    /* The canonical text of the entry (keys sorted, id included) names it
     * in news.sources and tells when it changed. */
    json_t *copy = json_deep_copy(obj);
    if (!copy || json_object_set_new(copy, "id", json_string(src->id))) {
        json_decref(copy);
        return NA_ERR_NOMEM;
    }
    src->json = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(copy);
    if (!src->json) {
        return NA_ERR_NOMEM;
    }
    return na_sha256_hex(src->json, strlen(src->json), src->hash);
}

na_err_t na_source_parse_json(const char *buf, size_t len, const char *key_id,
                              struct na_source *src, char *errstr, size_t errstr_size) {
    json_error_t jerr;
    json_t *obj = NULL;
    na_err_t err;
    char detail[384];

    memset(src, 0, sizeof(*src));
    obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!obj) {
        char shown[600], why[JSON_ERROR_TEXT_LENGTH];
        snprintf(errstr, errstr_size, "source %s:%d:%d: %s",
                 na_conf_shown_id_buf(key_id, shown, sizeof(shown)), jerr.line,
                 jerr.column, na_json_error_shown(&jerr, why, sizeof(why)));
        return NA_ERR_PARSE;
    }
    if (json_is_object(obj) && !json_object_get(obj, "id") &&
        json_object_set_new(obj, "id", json_string(key_id))) {
        json_decref(obj);
        return NA_ERR_NOMEM;
    }
    err = parse_source(obj, 0, src, detail, sizeof(detail));
    if (!err && strcmp(src->id, key_id)) {
        char shown[600];
        snprintf(detail, sizeof(detail), "id \"%s\" differs from the record key",
                 na_conf_shown_id_buf(src->id, shown, sizeof(shown)));
        err = NA_ERR_CONFIG;
    }
    if (err) {
        char shown[600];
        snprintf(errstr, errstr_size, "source %s: %s",
                 na_conf_shown_id_buf(key_id, shown, sizeof(shown)), detail);
        na_source_cleanup(src);
    }
    json_decref(obj);
    return err;
}

struct id_pos {
    const char *id;
    size_t pos;
};

static int cmp_id_pos(const void *a, const void *b) {
    const struct id_pos *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* Index the first @p n sources of @p s by id (s->by_id) and find the
 * first entry, in file order, whose id an earlier entry has: its position
 * into *dup, or SIZE_MAX when the ids are unique. O(n log n): a scan of the
 * earlier entries for each took minutes for NA_MAX_SOURCES sources, at
 * start and at every reload. @returns NA_OK or NA_ERR_NOMEM. */
static na_err_t index_ids(struct na_sources *s, size_t n, size_t *dup) {
    struct id_pos *o = malloc((n + 1) * sizeof(*o));
    *dup = SIZE_MAX;
    if (!o || !(s->by_id = malloc((n + 1) * sizeof(*s->by_id)))) {
        free(o);
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        o[i].id = s->v[i].id;
        o[i].pos = i;
    }
    qsort(o, n, sizeof(*o), cmp_id_pos);
    for (size_t i = 0; i < n; i++) {
        s->by_id[i] = o[i].pos;
        if (i > 0 && !strcmp(o[i - 1].id, o[i].id) && o[i].pos < *dup) {
            *dup = o[i].pos;
        }
    }
    free(o);
    return NA_OK;
}

na_err_t na_sources_load_buf(const char *buf, size_t len, const char *name,
                             struct na_sources *out, char *errstr, size_t errstr_size) {
    json_error_t jerr;
    json_t *root = NULL;
    json_t *list;
    na_err_t err = NA_OK;
    char detail[384];

    memset(out, 0, sizeof(*out));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char why[JSON_ERROR_TEXT_LENGTH];
        snprintf(errstr, errstr_size, "%s:%d:%d: %s", name, jerr.line, jerr.column,
                 na_json_error_shown(&jerr, why, sizeof(why)));
        return NA_ERR_PARSE;
    }
    list = root;
    if (json_is_object(root)) {
        const char *key;
        json_t *v;
        json_object_foreach(root, key, v) {
            if (strcmp(key, "sources")) {
                snprintf(errstr, errstr_size, "%s: unknown key \"%s\"", name, key);
                err = NA_ERR_CONFIG;
                goto out;
            }
        }
        list = json_object_get(root, "sources");
    }
    if (!json_is_array(list)) {
        snprintf(errstr, errstr_size, "%s: want {\"sources\": [...]} or an array", name);
        err = NA_ERR_CONFIG;
        goto out;
    }
    if (json_array_size(list) > NA_MAX_SOURCES) {
        snprintf(errstr, errstr_size, "%s: more than %u sources", name, NA_MAX_SOURCES);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    out->v = calloc(json_array_size(list) + 1, sizeof(*out->v));
    if (!out->v) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    size_t parsed = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        struct na_source *src = &out->v[out->cnt++];
        if ((err =
                 parse_source(json_array_get(list, i), i, src, detail, sizeof(detail)))) {
            snprintf(errstr, errstr_size, "%s: %s", name, detail);
            break;
        }
        parsed++;
    }
    /* A duplicate before the first bad entry is the error to report, as
     * when entries were checked one by one. */
    if (err != NA_ERR_NOMEM) {
        size_t dup;
        na_err_t ierr = index_ids(out, parsed, &dup);
        if (ierr) {
            snprintf(errstr, errstr_size, "%s: no memory", name);
            err = ierr;
        } else if (dup != SIZE_MAX) {
            char shown[600];
            snprintf(errstr, errstr_size, "%s: sources[%zu]: duplicate id \"%s\"", name,
                     dup, na_conf_shown_id_buf(out->v[dup].id, shown, sizeof(shown)));
            err = NA_ERR_CONFIG;
        }
    }
out:
    if (err) {
        na_sources_cleanup(out);
    }
    json_decref(root);
    return err;
}

na_err_t na_sources_load_file(const char *path, struct na_sources *out, char *errstr,
                              size_t errstr_size) {
    char *buf = NULL;
    size_t len = 0;
    na_err_t err;

    memset(out, 0, sizeof(*out));
    err = na_read_file(path, NA_MAX_CONFIG_BYTES, &buf, &len, errstr, errstr_size);
    if (!err) {
        err = na_sources_load_buf(buf, len, path, out, errstr, errstr_size);
    }
    free(buf);
    return err;
}
