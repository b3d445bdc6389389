/*
 * RSS 0.9x and 2.0 (root <rss>, no namespace) and RSS 1.0 / 0.90 (root
 * <rdf:RDF>). RSS 2.0 items sit inside <channel>; RDF items are siblings of
 * <channel>. Titles and descriptions are HTML (escaped or in CDATA), as the
 * RSS 2.0 best practices describe; content:encoded is HTML.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "feed_internal.h"
#include "newsalert/util.h"

/* An RSS core element: no namespace, or one of the RSS namespaces. */
static bool core(const xmlNode *n, const char *name) {
    if (!n || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name)) {
        return false;
    }
    const char *ns = na_feed_xml_ns(n);
    return !ns || !strcmp(ns, NA_FEED_NS_RSS10) || !strcmp(ns, NA_FEED_NS_RSS090) ||
           !strcmp(ns, NA_FEED_NS_RSS_USERLAND);
}

static bool match_rss(const xmlNode *root) {
    return core(root, "rss");
}

static bool match_rdf(const xmlNode *root) {
    return na_feed_xml_is(root, NA_FEED_NS_RDF, "RDF");
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

/* Trim ASCII whitespace of s[*start .. *start + *len). */
static void trim_span(const char *s, size_t *start, size_t *len) {
    while (*len > 0 && strchr(" \t\r\n", s[*start])) {
        (*start)++;
        (*len)--;
    }
    while (*len > 0 && strchr(" \t\r\n", s[*start + *len - 1])) {
        (*len)--;
    }
}

/*
 * A person as RSS writes one (<author>, dc:author): "email (Name)",
 * "Name (email)", "Name <email>" or either alone. When one part is an
 * email address and the other is not, the other wins; an address alone
 * stands for the person; anything else is kept whole.
 */
static na_err_t add_person(struct na_article *a, const char *s) {
    const char *open = strpbrk(s, "(<");
    const char *close = open ? strrchr(open, *open == '(' ? ')' : '>') : NULL;
    size_t in_start = 0;
    size_t in_len = 0;
    size_t out_start = 0;
    size_t out_len = 0;
    if (open && close) {
        in_start = (size_t)(open + 1 - s);
        in_len = (size_t)(close - open - 1);
        trim_span(s, &in_start, &in_len);
        out_len = (size_t)(open - s);
        trim_span(s, &out_start, &out_len);
        if (out_len == 0) {
            out_start = (size_t)(close + 1 - s);
            out_len = strlen(close + 1);
            trim_span(s, &out_start, &out_len);
        }
        bool out_is_mail = out_len > 0 && memchr(s + out_start, '@', out_len);
        bool in_is_mail = in_len > 0 && memchr(s + in_start, '@', in_len);
        if (in_len > 0 && (out_len == 0 || (out_is_mail && !in_is_mail))) {
            return na_feed_add_name(&a->authors, &a->authors_cnt, NA_MAX_AUTHORS,
                                    s + in_start, in_len);
        }
        if (out_len > 0 && in_is_mail && !out_is_mail) {
            return na_feed_add_name(&a->authors, &a->authors_cnt, NA_MAX_AUTHORS,
                                    s + out_start, out_len);
        }
        /* no address to split off: "Jane (Sales) Doe" stays whole */
    }
    return na_feed_add_name(&a->authors, &a->authors_cnt, NA_MAX_AUTHORS, s, strlen(s));
}

/* itunes:keywords "a, b,c": one category each. */
static na_err_t add_keywords(struct na_article *a, const char *s) {
    while (*s) {
        size_t n = strcspn(s, ",");
        na_err_t err =
            na_feed_add_name(&a->categories, &a->categories_cnt, NA_MAX_CATEGORIES, s, n);
        if (err) {
            return err;
        }
        s += n;
        s += *s == ',';
    }
    return NA_OK;
}

static bool is_itunes(const char *ns) {
    return ns && !strcasecmp(ns, NA_FEED_NS_ITUNES);
}

/* Pass 1 of an item: the RSS core elements and content:encoded. */
static na_err_t item_core(struct na_article *a, const xmlNode *c, const char *b,
                          char **permalink) {
    char *text = NULL;
    na_err_t err = NA_OK;
    bool html =
        core(c, "description") || na_feed_xml_is(c, NA_FEED_NS_CONTENT, "encoded");

    text = html ? na_feed_xml_markup(c, true) : trimmed_text(c);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    if (core(c, "title")) {
        err = na_feed_set_html(&a->title, text, strlen(text), NA_MAX_TITLE_BYTES, true);
    } else if (core(c, "link")) {
        if (!*text) {
            /* <link href=".."/>, the Atom way, written without namespace */
            free(text);
            text = na_feed_xml_attr(c, NULL, "href");
        }
        err = text ? na_feed_set_url(&a->url, b, text, true) : NA_OK;
    } else if (core(c, "guid")) {
        char *pl = na_feed_xml_attr(c, NULL, "isPermaLink");
        if (!*permalink && (!pl || strcasecmp(pl, "false"))) {
            *permalink = na_strdup(text);
        }
        free(pl);
        err = na_feed_set_plain(&a->guid, text, strlen(text), NA_MAX_URL_BYTES, true);
    } else if (core(c, "description")) {
        err = na_feed_set_html(&a->summary, text, strlen(text), NA_MAX_SUMMARY_BYTES,
                               false);
    } else if (na_feed_xml_is(c, NA_FEED_NS_CONTENT, "encoded")) {
        err = na_feed_set_html(&a->content, text, strlen(text), NA_MAX_CONTENT_BYTES,
                               false);
    } else if (core(c, "author")) {
        err = add_person(a, text);
    } else if (core(c, "category")) {
        err = na_feed_add_name(&a->categories, &a->categories_cnt, NA_MAX_CATEGORIES,
                               text, strlen(text));
    } else if (core(c, "pubDate")) {
        na_feed_set_date(&a->published_at, text);
    } else if (core(c, "language")) {
        err = na_feed_set_lang(&a->lang, text);
    }
    free(text);
    return err;
}

/*
 * Pass 2: the modules feeds add (Dublin Core, embedded Atom, iTunes), as
 * fallbacks: a field the core set stays, and their authors count only
 * when the core named none (@p core_authors).
 */
static na_err_t item_ext(struct na_article *a, const xmlNode *c, const char *b,
                         bool core_authors) {
    const char *ns = na_feed_xml_ns(c);
    const char *name = (const char *)c->name;
    bool dc = ns && !strcmp(ns, NA_FEED_NS_DC);
    bool dcterms = ns && !strcmp(ns, NA_FEED_NS_DCTERMS);
    bool itunes = is_itunes(ns);
    char *text = NULL;
    na_err_t err = NA_OK;

    if (!ns || (!dc && !dcterms && !itunes && !na_feed_atom_is(c, name))) {
        return NA_OK;
    }
    if (na_feed_atom_is(c, "author")) {
        return core_authors ? NA_OK
                            : na_feed_atom_person(&a->authors, &a->authors_cnt, c);
    }
    if (na_feed_atom_is(c, "content")) {
        return na_feed_atom_text(&a->content, c, NA_MAX_CONTENT_BYTES, false);
    }
    if (na_feed_atom_is(c, "summary")) {
        return na_feed_atom_text(&a->summary, c, NA_MAX_SUMMARY_BYTES, false);
    }
    if (na_feed_atom_is(c, "title")) {
        return na_feed_atom_text(&a->title, c, NA_MAX_TITLE_BYTES, true);
    }
    if (na_feed_atom_is(c, "link") || na_feed_atom_is(c, "category")) {
        bool link = !strcmp(name, "link");
        char *rel = link ? na_feed_xml_attr(c, NULL, "rel") : NULL;
        char *v = na_feed_xml_attr(c, NULL, link ? "href" : "label");
        if (!link && (!v || !v[strspn(v, " \t\r\n")])) {
            free(v); /* no label: the term itself */
            v = na_feed_xml_attr(c, NULL, "term");
        }
        if (v && link && (!rel || !strcasecmp(rel, "alternate"))) {
            err = na_feed_set_url(&a->url, b, v, true);
        } else if (v && !link) {
            err = na_feed_add_name(&a->categories, &a->categories_cnt, NA_MAX_CATEGORIES,
                                   v, strlen(v));
        }
        free(rel);
        free(v);
        return err;
    }
    if (!(text = trimmed_text(c))) {
        return NA_ERR_NOMEM;
    }
    if (dc && !strcmp(name, "title")) {
        err = na_feed_set_html(&a->title, text, strlen(text), NA_MAX_TITLE_BYTES, true);
    } else if ((dc && !strcmp(name, "description")) ||
               (itunes && !strcmp(name, "summary"))) {
        err = na_feed_set_html(&a->summary, text, strlen(text), NA_MAX_SUMMARY_BYTES,
                               false);
    } else if (dc && (!strcmp(name, "creator") || !strcmp(name, "author") ||
                      !strcmp(name, "contributor"))) {
        err = core_authors ? NA_OK : add_person(a, text);
    } else if (itunes && !strcmp(name, "author")) {
        err = core_authors ? NA_OK : add_person(a, text);
    } else if (dc && !strcmp(name, "subject")) {
        err = na_feed_add_name(&a->categories, &a->categories_cnt, NA_MAX_CATEGORIES,
                               text, strlen(text));
    } else if (itunes && !strcmp(name, "keywords")) {
        err = add_keywords(a, text);
    } else if (dc && !strcmp(name, "date")) {
        /* a date in the life of the item: when it came out, or last changed */
        na_feed_set_date(&a->published_at, text);
        na_feed_set_date(&a->updated_at, text);
    } else if ((dcterms && (!strcmp(name, "issued") || !strcmp(name, "created"))) ||
               na_feed_atom_is(c, "published")) {
        na_feed_set_date(&a->published_at, text);
    } else if ((dcterms && !strcmp(name, "modified")) || na_feed_atom_is(c, "updated")) {
        na_feed_set_date(&a->updated_at, text);
    } else if (dc && !strcmp(name, "language")) {
        err = na_feed_set_lang(&a->lang, text);
    }
    free(text);
    return err;
}

static na_err_t parse_item(struct na_feed_ctx *ctx, const xmlNode *item,
                           const char *inherited, const char *fallback) {
    struct na_article *a = NULL;
    char *base = NULL;
    char *permalink = NULL;
    char *about = NULL;
    na_err_t err = na_feed_item_begin(ctx, &a);
    if (err || !a) {
        return err;
    }
    base = na_feed_xml_base(item, inherited, fallback);
    const char *b = base ? base : fallback;
    if ((err = na_feed_xml_lang(item, &a->lang))) {
        goto out;
    }
    for (const xmlNode *c = item->children; c && !err; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            err = item_core(a, c, b, &permalink);
        }
    }
    bool core_authors = a->authors_cnt > 0;
    for (const xmlNode *c = item->children; c && !err; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            err = item_ext(a, c, b, core_authors);
        }
    }
    if (err || !na_feed_derive(ctx)) {
        goto out;
    }
    /* RDF: rdf:about names the item, usually by its link */
    about = na_feed_xml_attr(item, NA_FEED_NS_RDF, "about");
    if (about) {
        err = na_feed_set_plain(&a->guid, about, strlen(about), NA_MAX_URL_BYTES, true);
        if (err) {
            goto out;
        }
        if (!permalink) {
            permalink = about;
            about = NULL;
        }
    }
    if (!a->url && permalink) {
        /* only an absolute guid: "12345" is no link, whatever isPermaLink says */
        err = na_feed_set_url(&a->url, NULL, permalink, true);
    }
out:
    free(about);
    free(permalink);
    free(base);
    if (err) {
        na_feed_item_abort(ctx);
    } else {
        na_feed_item_end(ctx);
    }
    return err;
}

static void parse_skip_hours(struct na_feed *feed, const xmlNode *n) {
    for (const xmlNode *c = n->children; c; c = c->next) {
        long long h;
        char *text;
        if (!core(c, "hour") || !(text = trimmed_text(c))) {
            continue;
        }
        if (!na_parse_int64(text, 0, 24, &h)) {
            feed->skip_hours |= 1u << (h % 24); /* some feeds write 24 for 0 */
        }
        free(text);
    }
}

static void parse_skip_days(struct na_feed *feed, const xmlNode *n) {
    static const char *const days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    for (const xmlNode *c = n->children; c; c = c->next) {
        char *text;
        if (!core(c, "day") || !(text = trimmed_text(c))) {
            continue;
        }
        for (unsigned d = 0; d < 7; d++) {
            if (!strcasecmp(text, days[d])) {
                feed->skip_days |= (uint8_t)(1u << d);
            }
        }
        free(text);
    }
}

/* Feed-level fields of <channel>. */
static na_err_t parse_channel(struct na_feed_ctx *ctx, const xmlNode *channel,
                              const char *base) {
    struct na_feed *feed = ctx->feed;
    na_err_t err = NA_OK;
    for (const xmlNode *c = channel->children; c && !err; c = c->next) {
        const char *ns = na_feed_xml_ns(c);
        bool dc = ns && !strcmp(ns, NA_FEED_NS_DC);
        char *text = NULL;
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (core(c, "skipHours")) {
            parse_skip_hours(feed, c);
            continue;
        }
        if (core(c, "skipDays")) {
            parse_skip_days(feed, c);
            continue;
        }
        if (!(text = trimmed_text(c))) {
            return NA_ERR_NOMEM;
        }
        if (core(c, "title")) {
            err = na_feed_set_html(&feed->title, text, strlen(text), NA_MAX_TITLE_BYTES,
                                   true);
        } else if (core(c, "link")) {
            err = na_feed_set_url(&feed->link, base ? base : ctx->base_url, text, false);
        } else if (core(c, "language") ||
                   (dc && !strcmp((const char *)c->name, "language"))) {
            err = na_feed_set_lang(&feed->lang, text);
        } else if (core(c, "ttl")) {
            long long ttl;
            if (!na_parse_int64(text, 0, 7 * 24 * 60, &ttl)) {
                feed->ttl_min = (int)ttl;
            }
        }
        free(text);
    }
    if (!err) {
        err = na_feed_xml_lang(channel, &feed->lang);
    }
    return err;
}

/* Items under @p parent, resolved against the xml:base chain @p base or the
 * feed's link, then the document URL. */
static na_err_t parse_items(struct na_feed_ctx *ctx, const xmlNode *parent,
                            const char *base) {
    const char *fallback = ctx->feed->link ? ctx->feed->link : ctx->base_url;
    for (const xmlNode *c = parent->children; c; c = c->next) {
        if (core(c, "item")) {
            na_err_t err = parse_item(ctx, c, base, fallback);
            if (err) {
                return err;
            }
        }
    }
    return NA_OK;
}

static const xmlNode *find_channel(const xmlNode *root) {
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (core(c, "channel")) {
            return c;
        }
    }
    return NULL;
}

/* Shared by both roots: @p items_in_channel tells where items live. */
static na_err_t parse_doc(struct na_feed_ctx *ctx, xmlNode *root, bool items_in_channel) {
    char *root_base = NULL;
    char *chan_base = NULL;
    na_err_t err = NA_OK;
    const xmlNode *channel = find_channel(root);

    root_base = na_feed_xml_base(root, NULL, ctx->base_url);
    if (channel) {
        chan_base = na_feed_xml_base(channel, root_base, ctx->base_url);
        if ((err = parse_channel(ctx, channel, chan_base))) {
            goto out;
        }
    }
    if ((err = na_feed_xml_lang(root, &ctx->feed->lang))) {
        goto out;
    }
    if (channel && items_in_channel) {
        err = parse_items(ctx, channel, chan_base);
    }
    if (!err) {
        /* RDF items; and RSS 0.9x documents that put items beside <channel> */
        err = parse_items(ctx, root, root_base);
    }
out:
    free(root_base);
    free(chan_base);
    return err;
}

static na_err_t parse_rss(struct na_feed_ctx *ctx, xmlNode *root) {
    return parse_doc(ctx, root, true);
}

static na_err_t parse_rdf(struct na_feed_ctx *ctx, xmlNode *root) {
    return parse_doc(ctx, root, false);
}

const struct na_feed_format na_feed_format_rss = {
    .name = "rss",
    .match_xml = match_rss,
    .parse_xml = parse_rss,
};

const struct na_feed_format na_feed_format_rdf = {
    .name = "rdf",
    .match_xml = match_rdf,
    .parse_xml = parse_rdf,
};
