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

na_err_t na_article_set_id(struct na_article *a) {
    if (a->url && *a->url && !(a->id_by_guid && a->guid && *a->guid)) {
        return na_sha256_hex(a->url, strlen(a->url), a->id);
    }
    const char *feed = a->source_feed_url ? a->source_feed_url : "";
    if ((a->guid && *a->guid) || (a->title && *a->title)) {
        const char *parts[] = {feed, a->guid && *a->guid ? a->guid : a->title, NULL};
        return na_sha256_hex_parts(parts, a->id);
    }
    /* Known by its text alone: an empty part between keeps these ids apart
     * from any feed URL + GUID or title (parts end in NUL bytes). */
    const char *text = a->summary && *a->summary ? a->summary
                       : a->content              ? a->content
                                                 : "";
    const char *parts[] = {feed, "", text, NULL};
    return na_sha256_hex_parts(parts, a->id);
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
