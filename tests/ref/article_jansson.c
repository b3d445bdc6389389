/* The jansson decoder of article/v1, the reference of the single-pass reader
 * (common/article_decode.c): the code na_article_from_json() ran before it,
 * unchanged but for its name. */
#include "article_jansson.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

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

na_err_t na_article_from_json_jansson(const char *buf, size_t len, struct na_article *a,
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

static bool same_str(const char *x, const char *y) {
    return (!x && !y) || (x && y && !strcmp(x, y));
}

static bool same_list(char **x, size_t x_cnt, char **y, size_t y_cnt) {
    if (x_cnt != y_cnt) {
        return false;
    }
    for (size_t i = 0; i < x_cnt; i++) {
        if (strcmp(x[i], y[i])) {
            return false;
        }
    }
    return true;
}

const char *na_article_diff(const struct na_article *a, const struct na_article *b) {
    if (strcmp(a->id, b->id)) {
        return "id";
    }
    if (!same_str(a->url, b->url)) {
        return "url";
    }
    if (!same_str(a->guid, b->guid)) {
        return "guid";
    }
    if (!same_str(a->title, b->title)) {
        return "title";
    }
    if (!same_str(a->summary, b->summary)) {
        return "summary";
    }
    if (!same_str(a->content, b->content)) {
        return "content";
    }
    if (!same_list(a->authors, a->authors_cnt, b->authors, b->authors_cnt)) {
        return "authors";
    }
    if (!same_list(a->categories, a->categories_cnt, b->categories, b->categories_cnt)) {
        return "categories";
    }
    if (!same_str(a->lang, b->lang)) {
        return "lang";
    }
    if (a->published_at != b->published_at) {
        return "published_at";
    }
    if (a->updated_at != b->updated_at) {
        return "updated_at";
    }
    if (a->fetched_at != b->fetched_at) {
        return "fetched_at";
    }
    if (!same_str(a->source_id, b->source_id)) {
        return "source.id";
    }
    if (!same_str(a->source_name, b->source_name)) {
        return "source.name";
    }
    if (!same_str(a->source_feed_url, b->source_feed_url)) {
        return "source.feed_url";
    }
    if (a->id_by_guid != b->id_by_guid) {
        return "id_by_guid";
    }
    return NULL;
}

/* Whether @p e is "JSON error at line L column C: TEXT", L >= 1, C >= 0,
 * TEXT not empty, all of it one line of valid UTF-8. */
static bool parse_error_form(const char *e) {
    const char *prefix = "JSON error at line ";
    char *end;
    long line, column;
    if (strncmp(e, prefix, strlen(prefix))) {
        return false;
    }
    line = strtol(e + strlen(prefix), &end, 10);
    if (end == e + strlen(prefix) || line < 1 || strncmp(end, " column ", 8)) {
        return false;
    }
    const char *c = end + 8;
    column = strtol(c, &end, 10);
    if (end == c || column < 0 || strncmp(end, ": ", 2) || !end[2]) {
        return false;
    }
    return na_utf8_valid(e, strlen(e)) && !strpbrk(e, "\n\r");
}

static bool is_clean(const struct na_article *a) {
    struct na_article z;
    na_article_init(&z);
    return !na_article_diff(a, &z) && !a->authors && !a->categories;
}

bool na_article_decoders_agree(const char *buf, size_t len, char *why, size_t why_size) {
    struct na_article ref, got;
    char ref_err[512] = "";
    char got_err[512] = "";
    bool ok = false;
    na_article_init(&ref);
    na_article_init(&got);
    na_err_t ref_rc =
        na_article_from_json_jansson(buf, len, &ref, ref_err, sizeof(ref_err));
    na_err_t got_rc = na_article_from_json(buf, len, &got, got_err, sizeof(got_err));

    if (ref_rc != got_rc) {
        snprintf(why, why_size, "jansson: %s (%s); reader: %s (%s)", na_err2str(ref_rc),
                 ref_err, na_err2str(got_rc), got_err);
    } else if (got_rc == NA_OK) {
        const char *field = na_article_diff(&ref, &got);
        if (field) {
            snprintf(why, why_size, "both accept; field %s differs", field);
        } else {
            ok = true;
        }
    } else if (!is_clean(&got)) {
        snprintf(why, why_size, "reader failed (%s) but left fields set", got_err);
    } else if (got_rc == NA_ERR_PARSE) {
        ok = parse_error_form(got_err);
        if (!ok) {
            snprintf(why, why_size, "parse error not in the documented form: %s",
                     got_err);
        }
    } else if (strcmp(ref_err, got_err)) {
        snprintf(why, why_size, "%s: jansson says \"%s\", reader \"%s\"",
                 na_err2str(got_rc), ref_err, got_err);
    } else {
        ok = true;
    }
    na_article_cleanup(&ref);
    na_article_cleanup(&got);
    return ok;
}
