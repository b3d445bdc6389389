#include "newsalert/article.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

void na_article_init(struct na_article *a) {
    memset(a, 0, sizeof(*a));
    a->published_at = NA_TIME_UNKNOWN;
    a->updated_at = NA_TIME_UNKNOWN;
    a->fetched_at = NA_TIME_UNKNOWN;
}

static void list_free(char **list, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        free(list[i]);
    }
    free(list);
}

void na_article_cleanup(struct na_article *a) {
    if (!a) {
        return;
    }
    free(a->url);
    free(a->guid);
    free(a->title);
    free(a->summary);
    free(a->content);
    list_free(a->authors, a->authors_cnt);
    list_free(a->categories, a->categories_cnt);
    free(a->lang);
    free(a->source_id);
    free(a->source_name);
    free(a->source_feed_url);
    na_article_init(a);
}

void na_article_set_id(struct na_article *a) {
    if (a->url && *a->url && !(a->id_by_guid && a->guid && *a->guid)) {
        na_sha256_hex(a->url, strlen(a->url), a->id);
        return;
    }
    const char *feed = a->source_feed_url ? a->source_feed_url : "";
    if ((a->guid && *a->guid) || (a->title && *a->title)) {
        const char *parts[] = {feed, a->guid && *a->guid ? a->guid : a->title, NULL};
        na_sha256_hex_parts(parts, a->id);
        return;
    }
    /* Known by its text alone: an empty part between keeps these ids apart
     * from any feed URL + GUID or title (parts end in NUL bytes). */
    const char *text = a->summary && *a->summary ? a->summary
                       : a->content              ? a->content
                                                 : "";
    const char *parts[] = {feed, "", text, NULL};
    na_sha256_hex_parts(parts, a->id);
}

na_err_t na_article_list_add(char ***list, size_t *cnt, size_t max, const char *s) {
    if (!s || !*s || *cnt >= max) {
        return NA_OK;
    }
    for (size_t i = 0; i < *cnt; i++) {
        if (!strcmp((*list)[i], s)) {
            return NA_OK;
        }
    }
    char **n = realloc(*list, (*cnt + 1) * sizeof(*n));
    if (!n) {
        return NA_ERR_NOMEM;
    }
    *list = n;
    n[*cnt] = na_strdup(s);
    if (!n[*cnt]) {
        return NA_ERR_NOMEM;
    }
    (*cnt)++;
    return NA_OK;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t t) {
    char buf[NA_RFC3339_LEN];
    if (t == NA_TIME_UNKNOWN) {
        return json_null();
    }
    na_time_format_rfc3339(t, buf);
    return json_string(buf);
}

static json_t *list_json(char **list, size_t cnt) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < cnt; i++) {
        json_array_append_new(arr, json_string(list[i]));
    }
    return arr;
}

char *na_article_to_json(const struct na_article *a) {
    json_t *root = json_object();
    json_t *src = json_object();
    char *out = NULL;

    if (!root || !src) {
        json_decref(root);
        json_decref(src);
        return NULL;
    }
    json_object_set_new(root, "schema", json_string(NA_ARTICLE_SCHEMA));
    json_object_set_new(root, "id", json_string(a->id));
    json_object_set_new(root, "url", str_or_null(a->url));
    json_object_set_new(root, "title", json_string(a->title ? a->title : ""));
    json_object_set_new(root, "summary", json_string(a->summary ? a->summary : ""));
    json_object_set_new(root, "content", json_string(a->content ? a->content : ""));
    json_object_set_new(root, "authors", list_json(a->authors, a->authors_cnt));
    json_object_set_new(root, "categories", list_json(a->categories, a->categories_cnt));
    json_object_set_new(root, "lang", str_or_null(a->lang));
    json_object_set_new(root, "published_at", time_or_null(a->published_at));
    json_object_set_new(root, "fetched_at", time_or_null(a->fetched_at));
    json_object_set_new(src, "id", str_or_null(a->source_id));
    json_object_set_new(src, "name", str_or_null(a->source_name));
    json_object_set_new(src, "feed_url", str_or_null(a->source_feed_url));
    json_object_set_new(root, "source", src);
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

/* Copy an optional string member; NA_ERR_INVALID when present but not a
 * string (or null). */
static na_err_t get_str(json_t *obj, const char *key, size_t max, char **out,
                        char *errstr, size_t errstr_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        return NA_OK;
    }
    if (!json_is_string(v)) {
        snprintf(errstr, errstr_size, "field \"%s\" is not a string", key);
        return NA_ERR_INVALID;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (memchr(s, '\0', len)) {
        snprintf(errstr, errstr_size, "field \"%s\" contains a NUL byte", key);
        return NA_ERR_INVALID;
    }
    *out = na_strndup(s, na_utf8_cut(s, len, max));
    return *out ? NA_OK : NA_ERR_NOMEM;
}

static na_err_t get_time(json_t *obj, const char *key, int64_t *out, char *errstr,
                         size_t errstr_size) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        return NA_OK;
    }
    if (!json_is_string(v) || na_time_parse_rfc3339(json_string_value(v), out)) {
        snprintf(errstr, errstr_size, "field \"%s\" is not an RFC 3339 time", key);
        return NA_ERR_INVALID;
    }
    return NA_OK;
}

static na_err_t get_list(json_t *obj, const char *key, size_t max, char ***list,
                         size_t *cnt, char *errstr, size_t errstr_size) {
    json_t *v = json_object_get(obj, key);
    size_t i;
    json_t *item;
    if (!v || json_is_null(v)) {
        return NA_OK;
    }
    if (!json_is_array(v)) {
        snprintf(errstr, errstr_size, "field \"%s\" is not an array", key);
        return NA_ERR_INVALID;
    }
    json_array_foreach(v, i, item) {
        if (!json_is_string(item)) {
            snprintf(errstr, errstr_size, "field \"%s\"[%zu] is not a string", key, i);
            return NA_ERR_INVALID;
        }
        if (na_article_list_add(list, cnt, max, json_string_value(item))) {
            return NA_ERR_NOMEM;
        }
    }
    return NA_OK;
}

na_err_t na_article_from_json(const char *buf, size_t len, struct na_article *a,
                              char *errstr, size_t errstr_size) {
    json_error_t jerr;
    json_t *root = NULL;
    json_t *src;
    char *id = NULL;
    char *schema = NULL;
    na_err_t err = NA_OK;

    if (len > NA_MAX_ARTICLE_BYTES) {
        snprintf(errstr, errstr_size, "article of %zu bytes exceeds %u", len,
                 NA_MAX_ARTICLE_BYTES);
        return NA_ERR_TOO_LARGE;
    }
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(errstr, errstr_size, "JSON error at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        return NA_ERR_PARSE;
    }
    if (!json_is_object(root)) {
        snprintf(errstr, errstr_size, "article is not a JSON object");
        err = NA_ERR_INVALID;
        goto out;
    }
    if ((err = get_str(root, "schema", 64, &schema, errstr, errstr_size))) {
        goto out;
    }
    if (schema && strcmp(schema, NA_ARTICLE_SCHEMA)) {
        snprintf(errstr, errstr_size, "unsupported schema \"%.64s\"", schema);
        err = NA_ERR_UNSUPPORTED;
        goto out;
    }
    if ((err = get_str(root, "id", 128, &id, errstr, errstr_size))) {
        goto out;
    }
    if (!id || strlen(id) != NA_SHA256_HEX_LEN ||
        strspn(id, "0123456789abcdef") != NA_SHA256_HEX_LEN) {
        snprintf(errstr, errstr_size, "field \"id\" is missing or not 64 hex digits");
        err = NA_ERR_INVALID;
        goto out;
    }
    memcpy(a->id, id, NA_SHA256_HEX_LEN + 1);
    if ((err = get_str(root, "url", NA_MAX_URL_BYTES, &a->url, errstr, errstr_size)) ||
        (err = get_str(root, "title", NA_MAX_TITLE_BYTES, &a->title, errstr,
                       errstr_size)) ||
        (err = get_str(root, "summary", NA_MAX_SUMMARY_BYTES, &a->summary, errstr,
                       errstr_size)) ||
        (err = get_str(root, "content", NA_MAX_CONTENT_BYTES, &a->content, errstr,
                       errstr_size)) ||
        (err = get_str(root, "lang", 64, &a->lang, errstr, errstr_size)) ||
        (err = get_list(root, "authors", NA_MAX_AUTHORS, &a->authors, &a->authors_cnt,
                        errstr, errstr_size)) ||
        (err = get_list(root, "categories", NA_MAX_CATEGORIES, &a->categories,
                        &a->categories_cnt, errstr, errstr_size)) ||
        (err = get_time(root, "published_at", &a->published_at, errstr, errstr_size)) ||
        (err = get_time(root, "fetched_at", &a->fetched_at, errstr, errstr_size))) {
        goto out;
    }
    src = json_object_get(root, "source");
    if (src && !json_is_null(src)) {
        if (!json_is_object(src)) {
            snprintf(errstr, errstr_size, "field \"source\" is not an object");
            err = NA_ERR_INVALID;
            goto out;
        }
        if ((err = get_str(src, "id", 256, &a->source_id, errstr, errstr_size)) ||
            (err = get_str(src, "name", 1024, &a->source_name, errstr, errstr_size)) ||
            (err = get_str(src, "feed_url", NA_MAX_URL_BYTES, &a->source_feed_url, errstr,
                           errstr_size))) {
            goto out;
        }
    }
out:
    if (err) {
        na_article_cleanup(a);
    }
    free(id);
    free(schema);
    json_decref(root);
    return err;
}
