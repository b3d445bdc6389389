/*
 * JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1). Every member
 * is optional to us and checked for its type: a member of the wrong type
 * is ignored, an item that is not an object is dropped and counted. Item
 * authors default to the feed's (1.1 "authors", 1.0 "author").
 * content_html wins over content_text; summary and titles are plain text.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed_internal.h"
#include "newsalert/util.h"

struct names {
    char **v;
    size_t cnt;
};

static const char *str_member(const json_t *obj, const char *key, size_t *len) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        return NULL;
    }
    *len = json_string_length(v);
    return json_string_value(v);
}

static na_err_t set_plain(char **dst, const json_t *obj, const char *key, size_t max,
                          bool one_line) {
    size_t len = 0;
    const char *s = str_member(obj, key, &len);
    return s ? na_feed_set_plain(dst, s, len, max, one_line) : NA_OK;
}

/* Names from "authors": [{"name": ..}] (1.1) or "author": {"name": ..} (1.0). */
static na_err_t add_authors(char ***list, size_t *cnt, const json_t *obj) {
    const json_t *authors = json_object_get(obj, "authors");
    const json_t *author = json_object_get(obj, "author");
    size_t i;
    json_t *v;
    size_t len = 0;
    const char *name;
    na_err_t err;

    if (json_is_array(authors)) {
        json_array_foreach(authors, i, v) {
            if (json_is_object(v) && (name = str_member(v, "name", &len)) &&
                (err = na_feed_add_name(list, cnt, NA_MAX_AUTHORS, name, len))) {
                return err;
            }
        }
    }
    if (json_is_object(author) && (name = str_member(author, "name", &len))) {
        return na_feed_add_name(list, cnt, NA_MAX_AUTHORS, name, len);
    }
    return NA_OK;
}

static na_err_t parse_item(struct na_feed_ctx *ctx, const json_t *item,
                           const struct names *feed_authors) {
    struct na_article *a = NULL;
    const char *fallback = ctx->feed->link ? ctx->feed->link : ctx->base_url;
    const json_t *id = json_object_get(item, "id");
    const json_t *tags = json_object_get(item, "tags");
    size_t len = 0;
    const char *s;
    na_err_t err;

    if (!json_is_object(item)) {
        ctx->feed->items_dropped++;
        return NA_OK;
    }
    if ((err = na_feed_item_begin(ctx, &a)) || !a) {
        return err;
    }
    if (json_is_integer(id)) {
        /* 1.0 feeds in the wild use numbers; the spec says string */
        char num[32];
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        err = na_feed_set_plain(&a->guid, num, strlen(num), NA_MAX_URL_BYTES, true);
    } else {
        err = set_plain(&a->guid, item, "id", NA_MAX_URL_BYTES, true);
    }
    if (err) {
        goto out;
    }
    if ((s = str_member(item, "url", &len))) {
        err = na_feed_set_url(&a->url, fallback, s, true);
    }
    if (!err && !a->url && (s = str_member(item, "external_url", &len))) {
        err = na_feed_set_url(&a->url, fallback, s, true);
    }
    if (!err) {
        err = set_plain(&a->title, item, "title", NA_MAX_TITLE_BYTES, true);
    }
    if (!err) {
        err = set_plain(&a->summary, item, "summary", NA_MAX_SUMMARY_BYTES, false);
    }
    if (!err && (s = str_member(item, "content_html", &len))) {
        err = na_feed_set_html(&a->content, s, len, NA_MAX_CONTENT_BYTES, false);
    }
    if (!err) {
        err = set_plain(&a->content, item, "content_text", NA_MAX_CONTENT_BYTES, false);
    }
    if (!err && (s = str_member(item, "language", &len))) {
        err = na_feed_set_lang(&a->lang, s);
    }
    if (err) {
        goto out;
    }
    if ((s = str_member(item, "date_published", &len))) {
        na_feed_set_date(&a->published_at, s);
    }
    if ((s = str_member(item, "date_modified", &len))) {
        na_feed_set_date(&a->updated_at, s);
    }
    if ((err = add_authors(&a->authors, &a->authors_cnt, item))) {
        goto out;
    }
    for (size_t i = 0;
         na_feed_derive(ctx) && a->authors_cnt == 0 && i < feed_authors->cnt; i++) {
        if ((err = na_article_list_add(&a->authors, &a->authors_cnt, NA_MAX_AUTHORS,
                                       feed_authors->v[i]))) {
            goto out;
        }
    }
    if (json_is_array(tags)) {
        size_t i;
        json_t *tag;
        json_array_foreach(tags, i, tag) {
            if (json_is_string(tag) &&
                (err = na_feed_add_name(&a->categories, &a->categories_cnt,
                                        NA_MAX_CATEGORIES, json_string_value(tag),
                                        json_string_length(tag)))) {
                goto out;
            }
        }
    }
out:
    if (err) {
        na_feed_item_abort(ctx);
    } else {
        na_feed_item_end(ctx);
    }
    return err;
}

static na_err_t parse_json(struct na_feed_ctx *ctx, const char *buf, size_t len) {
    struct na_feed *feed = ctx->feed;
    struct names authors = {NULL, 0};
    json_error_t jerr;
    json_t *root = NULL;
    char *copy = NULL;
    const json_t *items;
    const char *s;
    size_t slen = 0;
    na_err_t err = NA_OK;

    /* Invalid UTF-8 or raw control bytes: U+FFFD and spaces, as for XML,
     * rather than losing every item to one bad byte. */
    if (!na_utf8_valid(buf, len) || memchr(buf, '\0', len)) {
        copy = na_utf8_sanitize(buf, len);
        if (!copy) {
            return NA_ERR_NOMEM;
        }
        buf = copy;
        len = strlen(copy);
    }
    /* JSON_ALLOW_NUL: one "\u0000" should cost a space, not the feed */
    root = json_loadb(buf, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char *text = na_utf8_sanitize(jerr.text, strlen(jerr.text));
        snprintf(ctx->errstr, ctx->errstr_size, "JSON error at line %d column %d: %s",
                 jerr.line, jerr.column, text ? text : "");
        free(text);
        free(copy);
        return NA_ERR_PARSE;
    }
    s = str_member(root, "version", &slen);
    items = json_object_get(root, "items");
    if (!json_is_object(root) ||
        (!(s && strstr(s, "jsonfeed.org/version/")) && !json_is_array(items))) {
        snprintf(ctx->errstr, ctx->errstr_size,
                 "JSON document is not a JSON Feed (no version, no items)");
        err = NA_ERR_UNSUPPORTED;
        goto out;
    }
    if ((s = str_member(root, "home_page_url", &slen)) &&
        (err = na_feed_set_url(&feed->link, ctx->base_url, s, false))) {
        goto out;
    }
    if ((err = set_plain(&feed->title, root, "title", NA_MAX_TITLE_BYTES, true))) {
        goto out;
    }
    if ((s = str_member(root, "language", &slen)) &&
        (err = na_feed_set_lang(&feed->lang, s))) {
        goto out;
    }
    if ((err = add_authors(&authors.v, &authors.cnt, root))) {
        goto out;
    }
    if (json_is_array(items)) {
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            if ((err = parse_item(ctx, item, &authors))) {
                goto out;
            }
        }
    }
out:
    for (size_t i = 0; i < authors.cnt; i++) {
        free(authors.v[i]);
    }
    free(authors.v);
    json_decref(root);
    free(copy);
    return err;
}

const struct na_feed_format na_feed_format_jsonfeed = {
    .name = "jsonfeed",
    .parse_json = parse_json,
};
