/*
 * Atom 1.0 (RFC 4287) and Atom 0.3. Text constructs follow their type:
 * "text" is plain text, "html" is escaped HTML, "xhtml" is inline XHTML;
 * Atom 0.3's MIME types ("text/html", "application/xhtml+xml") and
 * mode="escaped|xml|base64" map onto the same three. Relative links
 * resolve against xml:base (on any ancestor, the link included), then the
 * feed's alternate link, then the document URL. An entry without an
 * author takes the feed's authors (RFC 4287 section 4.2.1).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feed_internal.h"
#include "newsalert/hash.h"
#include "newsalert/util.h"

struct names {
    char **v;
    size_t cnt;
};

/* An Atom element, or one without namespace (inside an Atom document). */
static bool core(const xmlNode *n, const char *name) {
    if (!n || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name)) {
        return false;
    }
    const char *ns = na_feed_xml_ns(n);
    return !ns || !strcmp(ns, NA_FEED_NS_ATOM10) || !strcmp(ns, NA_FEED_NS_ATOM03);
}

bool na_feed_atom_is(const xmlNode *n, const char *name) {
    return core(n, name) && na_feed_xml_ns(n) != NULL;
}

static bool match_atom(const xmlNode *root) {
    return core(root, "feed");
}

static char *trimmed_text(const xmlNode *n) {
    char *s = na_feed_xml_text(n);
    if (!s) {
        return NULL;
    }
    size_t start = strspn(s, " \t\r\n");
    size_t len = strlen(s + start);
    while (len > 0 && strchr(" \t\r\n", s[start + len - 1])) {
        len--;
    }
    memmove(s, s + start, len);
    s[len] = '\0';
    return s;
}

enum text_kind {
    KIND_TEXT,
    KIND_HTML,
    KIND_XHTML,
    KIND_SKIP, /* out-of-line (src=) or not text at all (image/png) */
};

static enum text_kind text_kind(const char *type, const char *mode) {
    if (mode && !strcasecmp(mode, "xml")) {
        return KIND_XHTML;
    }
    if (!type || !strcasecmp(type, "text") || !strncasecmp(type, "text/plain", 10)) {
        return KIND_TEXT;
    }
    if (!strcasecmp(type, "html") || !strncasecmp(type, "text/html", 9)) {
        return KIND_HTML;
    }
    if (!strcasecmp(type, "xhtml") || !strncasecmp(type, "application/xhtml+xml", 21)) {
        return KIND_XHTML;
    }
    if (!strncasecmp(type, "text/", 5)) {
        return KIND_TEXT;
    }
    return KIND_SKIP;
}

na_err_t na_feed_atom_text(char **dst, const xmlNode *n, size_t max, bool one_line) {
    char *type = na_feed_xml_attr(n, NULL, "type");
    char *mode = na_feed_xml_attr(n, NULL, "mode");
    char *src = na_feed_xml_attr(n, NULL, "src");
    char *text = NULL;
    unsigned char *raw = NULL;
    na_err_t err = NA_OK;
    enum text_kind kind = text_kind(type, mode);

    if (*dst || src || kind == KIND_SKIP) {
        goto out;
    }
    if (mode && !strcasecmp(mode, "base64")) {
        size_t raw_len = 0;
        text = trimmed_text(n);
        if (!text) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        raw = na_base64_decode(text, &raw_len);
        if (raw && kind == KIND_TEXT) {
            err = na_feed_set_plain(dst, (const char *)raw, raw_len, max, one_line);
        } else if (raw) {
            err = na_feed_set_html(dst, (const char *)raw, raw_len, max, one_line);
        }
        goto out;
    }
    if (kind == KIND_TEXT) {
        text = na_feed_xml_text(n);
    } else {
        text = na_feed_xml_markup(n, kind == KIND_HTML);
    }
    if (!text) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (kind == KIND_TEXT) {
        err = na_feed_set_plain(dst, text, strlen(text), max, one_line);
    } else {
        err = na_feed_set_html(dst, text, strlen(text), max, one_line);
    }
out:
    free(type);
    free(mode);
    free(src);
    free(text);
    free(raw);
    return err;
}

/* The first alternate link (rel="alternate" or no rel) of @p parent. */
static na_err_t set_alternate(char **dst, const xmlNode *parent, const char *base,
                              const char *fallback, bool canonical) {
    na_err_t err = NA_OK;
    for (const xmlNode *c = parent->children; c && !*dst && !err; c = c->next) {
        if (!core(c, "link")) {
            continue;
        }
        char *rel = na_feed_xml_attr(c, NULL, "rel");
        char *href = na_feed_xml_attr(c, NULL, "href");
        if (href && (!rel || !strcasecmp(rel, "alternate"))) {
            char *link_base = na_feed_xml_base(c, base, fallback);
            err = na_feed_set_url(dst, link_base ? link_base : fallback, href, canonical);
            free(link_base);
        }
        free(rel);
        free(href);
    }
    return err;
}

/* The text of the first child of @p n named @p name, trimmed, or NULL. */
static char *child_text(const xmlNode *n, const char *name, bool *nomem) {
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (core(c, name)) {
            char *s = trimmed_text(c);
            if (!s) {
                *nomem = true;
            } else if (!*s) {
                free(s);
                continue;
            }
            return s;
        }
    }
    return NULL;
}

na_err_t na_feed_atom_person(char ***list, size_t *cnt, const xmlNode *n) {
    bool nomem = false;
    char *name = child_text(n, "name", &nomem);
    na_err_t err = NA_OK;
    if (!name && !nomem) {
        name = child_text(n, "email", &nomem); /* a person known by email only */
    }
    if (nomem) {
        err = NA_ERR_NOMEM;
    } else if (name) {
        err = na_feed_add_name(list, cnt, NA_MAX_AUTHORS, name, strlen(name));
    }
    free(name);
    return err;
}

/* Names of the <author> persons under @p parent. */
static na_err_t add_authors(char ***list, size_t *cnt, const xmlNode *parent) {
    for (const xmlNode *c = parent->children; c; c = c->next) {
        if (core(c, "author")) {
            na_err_t err = na_feed_atom_person(list, cnt, c);
            if (err) {
                return err;
            }
        }
    }
    return NA_OK;
}

static na_err_t parse_entry(struct na_feed_ctx *ctx, const xmlNode *entry,
                            const char *inherited, const char *fallback,
                            const struct names *feed_authors) {
    struct na_article *a = NULL;
    char *base = NULL;
    na_err_t err = na_feed_item_begin(ctx, &a);
    if (err || !a) {
        return err;
    }
    base = na_feed_xml_base(entry, inherited, fallback);
    if ((err = na_feed_xml_lang(entry, &a->lang)) ||
        (err = set_alternate(&a->url, entry, base, fallback, true)) ||
        (err = add_authors(&a->authors, &a->authors_cnt, entry))) {
        goto out;
    }
    for (const xmlNode *c = entry->children; c && !err; c = c->next) {
        const char *ns = na_feed_xml_ns(c);
        char *text = NULL;
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (core(c, "title")) {
            err = na_feed_atom_text(&a->title, c, NA_MAX_TITLE_BYTES, true);
        } else if (core(c, "summary")) {
            err = na_feed_atom_text(&a->summary, c, NA_MAX_SUMMARY_BYTES, false);
        } else if (core(c, "content")) {
            err = na_feed_atom_text(&a->content, c, NA_MAX_CONTENT_BYTES, false);
        } else if (core(c, "category")) {
            /* label is the human-readable form of term (RFC 4287 4.2.2) */
            char *term = na_feed_xml_attr(c, NULL, "label");
            if (!term || !term[strspn(term, " \t\r\n")]) {
                free(term);
                term = na_feed_xml_attr(c, NULL, "term");
            }
            if (term) {
                err = na_feed_add_name(&a->categories, &a->categories_cnt,
                                       NA_MAX_CATEGORIES, term, strlen(term));
                free(term);
            }
        } else if (core(c, "id") || core(c, "published") || core(c, "issued") ||
                   core(c, "created") || core(c, "updated") || core(c, "modified") ||
                   (ns && !strcmp(ns, NA_FEED_NS_DC) &&
                    !strcmp((const char *)c->name, "subject"))) {
            if (!(text = trimmed_text(c))) {
                err = NA_ERR_NOMEM;
                break;
            }
            if (core(c, "id")) {
                err = na_feed_set_plain(&a->guid, text, strlen(text), NA_MAX_URL_BYTES,
                                        true);
            } else if (core(c, "published") || core(c, "issued") || core(c, "created")) {
                na_feed_set_date(&a->published_at, text);
            } else if (core(c, "updated") || core(c, "modified")) {
                na_feed_set_date(&a->updated_at, text);
            } else {
                err = na_feed_add_name(&a->categories, &a->categories_cnt,
                                       NA_MAX_CATEGORIES, text, strlen(text));
            }
            free(text);
        }
    }
    for (size_t i = 0;
         !err && na_feed_derive(ctx) && a->authors_cnt == 0 && i < feed_authors->cnt;
         i++) {
        err = na_article_list_add(&a->authors, &a->authors_cnt, NA_MAX_AUTHORS,
                                  feed_authors->v[i]);
    }
out:
    free(base);
    if (err) {
        na_feed_item_abort(ctx);
    } else {
        na_feed_item_end(ctx);
    }
    return err;
}

static na_err_t parse_atom(struct na_feed_ctx *ctx, xmlNode *root) {
    struct na_feed *feed = ctx->feed;
    struct names authors = {NULL, 0};
    char *base = NULL;
    na_err_t err = NA_OK;

    base = na_feed_xml_base(root, NULL, ctx->base_url);
    if ((err = na_feed_xml_lang(root, &feed->lang)) ||
        (err = set_alternate(&feed->link, root, base, ctx->base_url, false)) ||
        (err = add_authors(&authors.v, &authors.cnt, root))) {
        goto out;
    }
    for (const xmlNode *c = root->children; c && !err; c = c->next) {
        if (core(c, "title")) {
            err = na_feed_atom_text(&feed->title, c, NA_MAX_TITLE_BYTES, true);
        }
    }
    const char *fallback = feed->link ? feed->link : ctx->base_url;
    for (const xmlNode *c = root->children; c && !err; c = c->next) {
        if (core(c, "entry")) {
            err = parse_entry(ctx, c, base, fallback, &authors);
        }
    }
out:
    for (size_t i = 0; i < authors.cnt; i++) {
        free(authors.v[i]);
    }
    free(authors.v);
    free(base);
    return err;
}

const struct na_feed_format na_feed_format_atom = {
    .name = "atom",
    .match_xml = match_atom,
    .parse_xml = parse_atom,
};
