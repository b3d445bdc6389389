#include "feed_internal.h"

#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "date.h"
#include "html.h"
#include "newsalert/limits.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "url.h"

/*
 * Entities. libxml2 runs without XML_PARSE_NOENT, XML_PARSE_DTDLOAD,
 * XML_PARSE_DTDATTR and XML_PARSE_HUGE, and with XML_PARSE_NONET, so it
 * never reads an external DTD or entity, and a reference to a declared
 * entity stays in the tree as an entity-reference node. When we take the
 * text of an element or attribute, a reference becomes:
 *
 *  - for an internal entity whose value is plain text (no '&', no '<') of
 *    at most NA_FEED_MAX_ENTITY_BYTES: that value, so
 *    <!ENTITY nbsp "&#160;"> works as the RSS 0.91 DTD intends;
 *  - for an undeclared entity (allowed when the DOCTYPE names an external
 *    DTD that we do not load, as RSS 0.91 documents do): the character of
 *    the HTML 4 entity of that name ("&eacute;" is é), else nothing;
 *  - for anything else (an external entity such as SYSTEM
 *    "file:///etc/passwd", an entity whose value holds references or
 *    markup, as in "billion laughs"): nothing.
 *
 * We never call xmlNodeGetContent() or xmlGetProp(), which would expand
 * entity references through the parsed entity content.
 */

static const struct na_feed_format *const formats[] = {
    &na_feed_format_rss,
    &na_feed_format_rdf,
    &na_feed_format_atom,
    &na_feed_format_jsonfeed,
};

void na_feed_init(struct na_feed *feed) {
    memset(feed, 0, sizeof(*feed));
}

void na_feed_cleanup(struct na_feed *feed) {
    if (!feed) {
        return;
    }
    free(feed->title);
    free(feed->link);
    free(feed->lang);
    for (size_t i = 0; i < feed->items_cnt; i++) {
        na_article_cleanup(&feed->items[i]);
    }
    free(feed->items);
    na_feed_init(feed);
}

/* ---- items ---- */

na_err_t na_feed_item_begin(struct na_feed_ctx *ctx, struct na_article **out) {
    struct na_feed *feed = ctx->feed;
    *out = NULL;
    if (feed->items_cnt >= NA_MAX_FEED_ITEMS) {
        feed->items_dropped++;
        return NA_OK;
    }
    if (feed->items_cnt == ctx->items_size) {
        size_t size = ctx->items_size ? ctx->items_size * 2 : 16;
        if (size > NA_MAX_FEED_ITEMS) {
            size = NA_MAX_FEED_ITEMS;
        }
        struct na_article *items = realloc(feed->items, size * sizeof(*items));
        if (!items) {
            return NA_ERR_NOMEM;
        }
        feed->items = items;
        ctx->items_size = size;
    }
    *out = &feed->items[feed->items_cnt++];
    na_article_init(*out);
    return NA_OK;
}

void na_feed_item_abort(struct na_feed_ctx *ctx) {
    struct na_feed *feed = ctx->feed;
    if (feed->items_cnt > 0) {
        na_article_cleanup(&feed->items[--feed->items_cnt]);
        feed->items_dropped++;
    }
}

void na_feed_item_end(struct na_feed_ctx *ctx) {
    struct na_feed *feed = ctx->feed;
    if (feed->items_cnt == 0) {
        return;
    }
    struct na_article *a = &feed->items[feed->items_cnt - 1];
    if (!na_feed_derive(ctx)) {
        return;
    }
    if (a->published_at == NA_TIME_UNKNOWN) {
        a->published_at = a->updated_at;
    }
    if (!a->lang && feed->lang) {
        a->lang = na_strdup(feed->lang); /* on no memory the item has no lang */
    }
    if (!a->url && !a->guid && !a->title && !a->summary && !a->content) {
        /* nothing to show and nothing to know it by */
        feed->items_empty++;
        na_feed_item_abort(ctx);
    }
}

/* ---- field setters ---- */

/* Cut @p s (valid UTF-8) to at most @p max bytes and trailing whitespace;
 * free it and return NULL when nothing is left. */
static char *cut_or_drop(char *s, size_t max) {
    size_t len = strlen(s);
    len = na_utf8_cut(s, len, max);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\n')) {
        len--;
    }
    s[len] = '\0';
    if (len == 0) {
        free(s);
        return NULL;
    }
    return s;
}

static na_err_t set_text(char **dst, char *text, size_t max, bool one_line) {
    if (!text) {
        return NA_ERR_NOMEM;
    }
    if (one_line) {
        na_html_flatten(text);
    }
    *dst = cut_or_drop(text, max);
    return NA_OK;
}

na_err_t na_feed_set_plain(char **dst, const char *s, size_t len, size_t max,
                           bool one_line) {
    if (*dst || !s) {
        return NA_OK;
    }
    return set_text(dst, na_html_plain_text(s, len), max, one_line);
}

na_err_t na_feed_set_html(char **dst, const char *s, size_t len, size_t max,
                          bool one_line) {
    if (*dst || !s) {
        return NA_OK;
    }
    return set_text(dst, na_html_to_text(s, len), max, one_line);
}

na_err_t na_feed_set_url(char **dst, const char *base, const char *ref, bool canonical) {
    char *url = NULL;
    if (*dst || !ref) {
        return NA_OK;
    }
    url = na_url_resolve(base, ref);
    if (url && canonical) {
        /* the fragment stays until settle_links() sees the whole document */
        char *c = na_url_canonical_ex(url, NA_URL_KEEP_FRAGMENT);
        free(url);
        url = c;
    }
    if (url && canonical && strlen(url) > NA_MAX_URL_BYTES) {
        url[strcspn(url, "#")] = '\0'; /* a fragment never costs the link */
    }
    if (url && (strlen(url) > NA_MAX_URL_BYTES || !na_utf8_valid(url, strlen(url)))) {
        free(url);
        url = NULL;
    }
    *dst = url; /* NULL also when the link is unusable: no link, not an error */
    return NA_OK;
}

na_err_t na_feed_set_lang(char **dst, const char *s) {
    char tag[36];
    size_t n = 0;
    if (*dst || !s) {
        return NA_OK;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    for (; *s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r'; s++) {
        char c = *s;
        if (c == '_') {
            c = '-';
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-') ||
            n + 1 >= sizeof(tag)) {
            return NA_OK; /* not a language tag: ignored */
        }
        tag[n++] = c;
    }
    if (n == 0) {
        return NA_OK;
    }
    *dst = na_strndup(tag, n);
    return *dst ? NA_OK : NA_ERR_NOMEM;
}

void na_feed_set_date(int64_t *dst, const char *s) {
    int64_t t;
    if (*dst == NA_TIME_UNKNOWN && s && !na_date_parse(s, &t)) {
        *dst = t;
    }
}

na_err_t na_feed_add_name(char ***list, size_t *cnt, size_t max, const char *s,
                          size_t len) {
    char *name = NULL;
    na_err_t err;
    if (!s || *cnt >= max) {
        return NA_OK;
    }
    err = na_feed_set_plain(&name, s, len, NA_MAX_TITLE_BYTES, true);
    if (!err && name) {
        err = na_article_list_add(list, cnt, max, name);
    }
    free(name);
    return err;
}

/* ---- XML ---- */

const char *na_feed_xml_ns(const xmlNode *n) {
    return n->ns && n->ns->href ? (const char *)n->ns->href : NULL;
}

bool na_feed_xml_is(const xmlNode *n, const char *ns, const char *name) {
    if (!n || n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name)) {
        return false;
    }
    const char *href = na_feed_xml_ns(n);
    if (!ns) {
        return href == NULL;
    }
    return href && !strcmp(href, ns);
}

/* The text an entity reference stands for; see the comment at the top. */
static void entity_text(struct na_buf *buf, const xmlNode *ref) {
    xmlEntity *ent = xmlGetDocEntity(ref->doc, ref->name);
    if (!ent) {
        int32_t cp = na_html_entity_lookup((const char *)ref->name,
                                           strlen((const char *)ref->name));
        if (cp > 0) {
            char utf8[4];
            na_buf_append(buf, utf8, na_html_utf8_encode((uint32_t)cp, utf8));
        }
        return;
    }
    if ((ent->etype != XML_INTERNAL_GENERAL_ENTITY &&
         ent->etype != XML_INTERNAL_PREDEFINED_ENTITY) ||
        !ent->content) {
        return;
    }
    const char *v = (const char *)ent->content;
    size_t len = strlen(v);
    if (ent->etype == XML_INTERNAL_PREDEFINED_ENTITY ||
        (len <= NA_FEED_MAX_ENTITY_BYTES && !strpbrk(v, "&<"))) {
        na_buf_append(buf, v, len);
    }
}

/* Walk the node list starting at @p n (depth-first, iterative, bounded by
 * the depth check of na_feed_parse()), appending text. */
static void collect_text(struct na_buf *buf, const xmlNode *first) {
    const xmlNode *n = first;
    const xmlNode *top = first ? first->parent : NULL;
    while (n && buf->len < NA_FEED_MAX_RAW_TEXT_BYTES && !buf->oom) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content) {
                na_buf_puts(buf, (const char *)n->content);
            }
        } else if (n->type == XML_ENTITY_REF_NODE) {
            entity_text(buf, n);
        } else if (n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            continue;
        }
        while (n && !n->next && n->parent != top) {
            n = n->parent;
        }
        n = n ? n->next : NULL;
    }
}

static char *finish_raw(struct na_buf *buf) {
    if (buf->len > NA_FEED_MAX_RAW_TEXT_BYTES) {
        buf->len = na_utf8_cut(buf->data, buf->len, NA_FEED_MAX_RAW_TEXT_BYTES);
        buf->data[buf->len] = '\0';
    }
    return na_buf_steal(buf);
}

char *na_feed_xml_text(const xmlNode *n) {
    struct na_buf buf;
    na_buf_init(&buf);
    collect_text(&buf, n->children);
    return finish_raw(&buf);
}

static void append_escaped(struct na_buf *buf, const char *s, size_t len) {
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        if (s[i] == '&') {
            rep = "&amp;";
        } else if (s[i] == '<') {
            rep = "&lt;";
        } else if (s[i] == '>') {
            rep = "&gt;";
        }
        if (rep) {
            na_buf_append(buf, s + start, i - start);
            na_buf_puts(buf, rep);
            start = i + 1;
        }
    }
    na_buf_append(buf, s + start, len - start);
}

char *na_feed_xml_markup(const xmlNode *node, bool text_is_html) {
    struct na_buf buf;
    const xmlNode *n = node->children;
    na_buf_init(&buf);
    while (n && buf.len < NA_FEED_MAX_RAW_TEXT_BYTES && !buf.oom) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content) {
                const char *s = (const char *)n->content;
                if (text_is_html) {
                    na_buf_puts(&buf, s);
                } else {
                    append_escaped(&buf, s, strlen(s));
                }
            }
        } else if (n->type == XML_ENTITY_REF_NODE) {
            struct na_buf ent;
            na_buf_init(&ent);
            entity_text(&ent, n);
            append_escaped(&buf, ent.data ? ent.data : "", ent.len);
            na_buf_cleanup(&ent);
        } else if (n->type == XML_ELEMENT_NODE) {
            na_buf_printf(&buf, "<%s>", (const char *)n->name);
            if (n->children) {
                n = n->children;
                continue;
            }
            na_buf_printf(&buf, "</%s>", (const char *)n->name);
        }
        /* climb, closing the elements we leave */
        while (n && !n->next && n->parent != node) {
            n = n->parent;
            na_buf_printf(&buf, "</%s>", (const char *)n->name);
        }
        n = n ? n->next : NULL;
    }
    return finish_raw(&buf);
}

char *na_feed_xml_attr(const xmlNode *n, const char *ns, const char *name) {
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        const char *href = a->ns && a->ns->href ? (const char *)a->ns->href : NULL;
        if (strcmp((const char *)a->name, name) ||
            (ns ? !href || strcmp(href, ns) : href != NULL)) {
            continue;
        }
        struct na_buf buf;
        na_buf_init(&buf);
        collect_text(&buf, a->children);
        return finish_raw(&buf);
    }
    return NULL;
}

char *na_feed_xml_base(const xmlNode *n, const char *inherited, const char *fallback) {
    char *xb = na_feed_xml_attr(n, NA_FEED_NS_XML, "base");
    char *out;
    if (!xb) {
        return na_strdup(inherited);
    }
    out = na_url_resolve(inherited ? inherited : fallback, xb);
    free(xb);
    return out ? out : na_strdup(inherited);
}

na_err_t na_feed_xml_lang(const xmlNode *n, char **dst) {
    char *lang = na_feed_xml_attr(n, NA_FEED_NS_XML, "lang");
    na_err_t err = na_feed_set_lang(dst, lang);
    free(lang);
    return err;
}

/* ---- detection and parsing ---- */

/* Deepest element nesting of the tree under @p root, stopping past @p max. */
static unsigned xml_depth(const xmlNode *root, unsigned max) {
    const xmlNode *n = root;
    unsigned depth = 1;
    unsigned deepest = 1;
    while (n) {
        if (n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            depth++;
            if (depth > deepest) {
                deepest = depth;
                if (deepest > max) {
                    return deepest;
                }
            }
            continue;
        }
        while (n && !n->next && n != root) {
            n = n->parent;
            depth--;
        }
        if (!n || n == root) {
            break;
        }
        n = n->next;
    }
    return deepest;
}

/* Nesting of a JSON text (jansson's own limit is a compile-time 2048)
 * and an upper bound of the values and member names jansson would build
 * (NA_FEED_MAX_JSON_VALUES), counted on the bytes; stops past either cap. */
static void json_scan(const char *s, size_t len, unsigned *depth_out,
                      size_t *values_out) {
    unsigned depth = 0, deepest = 0;
    size_t values = 1;
    bool in_str = false;
    for (size_t i = 0;
         i < len && deepest <= NA_MAX_FEED_DEPTH && values <= NA_FEED_MAX_JSON_VALUES;
         i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            values++;
            if (++depth > deepest) {
                deepest = depth;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == ',' || c == ':') {
            values++;
        }
    }
    *depth_out = deepest;
    *values_out = values;
}

/* true when the XML declaration names no encoding or UTF-8. */
static bool xml_is_utf8(const char *s, size_t len) {
    if (len >= 2 && (((unsigned char)s[0] == 0xfe && (unsigned char)s[1] == 0xff) ||
                     ((unsigned char)s[0] == 0xff && (unsigned char)s[1] == 0xfe) ||
                     s[0] == '\0' || s[1] == '\0')) {
        return false; /* UTF-16 or UTF-32 */
    }
    if (len < 5 || strncmp(s, "<?xml", 5)) {
        return true;
    }
    size_t end = len < 256 ? len : 256;
    const char *decl_end = NULL;
    for (size_t i = 5; i + 1 < end; i++) {
        if (s[i] == '?' && s[i + 1] == '>') {
            decl_end = s + i;
            break;
        }
    }
    if (!decl_end) {
        return true;
    }
    for (const char *p = s + 5; p + 8 < decl_end; p++) {
        if (strncmp(p, "encoding", 8)) {
            continue;
        }
        p += 8;
        while (p < decl_end && (*p == ' ' || *p == '=' || *p == '"' || *p == '\'')) {
            p++;
        }
        return (decl_end - p >= 5 && !strncasecmp(p, "utf-8", 5)) ||
               (decl_end - p >= 4 && !strncasecmp(p, "utf8", 4));
    }
    return true;
}

/* Bytes that XML 1.0 forbids and libxml2 rejects outright, but that feeds
 * carry now and then: control characters and invalid UTF-8. */
static bool needs_sanitize(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return true;
        }
    }
    return !na_utf8_valid(s, len);
}

/* Upper bound of the tree nodes libxml2 would build (see
 * NA_FEED_MAX_XML_MARKUP); counts '<' even inside CDATA and comments. */
static size_t markup_count(const char *s, size_t len) {
    static const char *const predefined[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    size_t cnt = 0;
    const char *end = s + len;
    for (const char *p = s; p < end; p++) {
        if (*p == '<') {
            cnt++;
        } else if (*p == '&' && p + 1 < end && p[1] != '#') {
            bool pre = false;
            for (size_t k = 0; k < 5 && !pre; k++) {
                size_t n = strlen(predefined[k]);
                pre = (size_t)(end - p - 1) >= n && !memcmp(p + 1, predefined[k], n);
            }
            cnt += !pre;
        }
    }
    return cnt;
}

/* The number at the start of @p s (libxml2's depth limit), or 256. */
static int depth_limit(const char *s) {
    long long v = 0;
    char num[12];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof(num)) {
        return 256;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    return na_parse_int64(num, 1, 1000000, &v) ? 256 : (int)v;
}

/* The first fatal error of a parse: what went wrong first, not what the
 * parser said last while giving up. */
struct xml_first_error {
    bool set;
    int line;
    char msg[200];
};

/* Structured error handler of our parser contexts: @p data is the context
 * (libxml2's default userData), its _private our xml_first_error. */
static void keep_first_error(void *data, xmlErrorPtr error) {
    xmlParserCtxtPtr pctxt = data;
    struct xml_first_error *first = pctxt ? pctxt->_private : NULL;
    if (!first || first->set || !error || error->level < XML_ERR_FATAL) {
        return;
    }
    first->set = true;
    first->line = error->line;
    snprintf(first->msg, sizeof(first->msg), "%s", error->message ? error->message : "");
}

static na_err_t parse_xml(struct na_feed_ctx *ctx, const char *buf, size_t len) {
    xmlParserCtxtPtr pctxt = NULL;
    xmlDocPtr doc = NULL;
    struct xml_first_error first = {false, 0, ""};
    char *copy = NULL;
    na_err_t err = NA_OK;
    const int options =
        XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

    if (xml_is_utf8(buf, len) && needs_sanitize(buf, len)) {
        copy = na_utf8_sanitize(buf, len);
        if (!copy) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        buf = copy;
        len = strlen(copy);
    }
    if (len > (size_t)INT32_MAX || markup_count(buf, len) > NA_FEED_MAX_XML_MARKUP) {
        snprintf(ctx->errstr, ctx->errstr_size,
                 "XML document has more than %u tags and entity references",
                 NA_FEED_MAX_XML_MARKUP);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    /* A parser context of our own keeps the error with this call (not in a
     * libxml2 global), and is still one xmlReadMemory()-style parse. */
    pctxt = xmlNewParserCtxt();
    if (!pctxt) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    /* A structured handler on this context takes every error: it keeps the
     * first fatal one, and no message reaches stderr (XML_PARSE_NOERROR
     * alone lets some, such as "huge text node", through). */
    pctxt->_private = &first;
    if (pctxt->sax) {
        pctxt->sax->serror = keep_first_error;
    }
    doc = xmlCtxtReadMemory(pctxt, buf, (int)len, NULL, NULL, options);
    if (!doc) {
        const xmlError *xe = xmlCtxtGetLastError(pctxt);
        char msg[200];
        size_t n;
        int line = first.set ? first.line : (xe ? xe->line : 0);
        snprintf(msg, sizeof(msg), "%s",
                 first.set ? first.msg : (xe && xe->message ? xe->message : "unknown"));
        if (!strncmp(msg, "Excessive depth in document: ", 29)) {
            /* libxml2's own nesting limit; its advice (XML_PARSE_HUGE) is
             * not for our readers */
            int limit = depth_limit(msg + 29);
            snprintf(msg, sizeof(msg), "nesting deeper than %d", limit);
        } else if (!strncmp(msg, "Detected an entity reference loop", 33)) {
            /* also what libxml2 says of "billion laughs" amplification */
            snprintf(msg, sizeof(msg),
                     "entity references that loop or multiply (refused)");
        }
        n = strcspn(msg, "\r\n");
        msg[n] = '\0';
        while (n > 0 && msg[n - 1] == ' ') {
            msg[--n] = '\0';
        }
        char *clean = na_utf8_sanitize(msg, n);
        snprintf(ctx->errstr, ctx->errstr_size, "XML error at line %d: %s", line,
                 clean ? clean : "");
        free(clean);
        err = NA_ERR_PARSE;
        goto out;
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root) {
        snprintf(ctx->errstr, ctx->errstr_size, "XML document has no root element");
        err = NA_ERR_PARSE;
        goto out;
    }
    if (xml_depth(root, NA_MAX_FEED_DEPTH) > NA_MAX_FEED_DEPTH) {
        snprintf(ctx->errstr, ctx->errstr_size, "XML nesting deeper than %u",
                 NA_MAX_FEED_DEPTH);
        err = NA_ERR_PARSE;
        goto out;
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (formats[i]->match_xml && formats[i]->match_xml(root)) {
            ctx->feed->format = formats[i]->name;
            err = formats[i]->parse_xml(ctx, root);
            goto out;
        }
    }
    {
        char name[128];
        snprintf(name, sizeof(name), "%s%s%s",
                 root->ns && root->ns->prefix ? (const char *)root->ns->prefix : "",
                 root->ns && root->ns->prefix ? ":" : "", (const char *)root->name);
        char *clean = na_utf8_sanitize(name, na_utf8_cut(name, strlen(name), 64));
        snprintf(ctx->errstr, ctx->errstr_size,
                 "unknown root element <%s>: not RSS, RDF or Atom", clean ? clean : "");
        free(clean);
    }
    err = NA_ERR_UNSUPPORTED;
out:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(pctxt);
    free(copy);
    return err;
}

na_err_t na_feed_parse(const char *buf, size_t len, const char *base_url,
                       struct na_feed *feed, char *errstr, size_t errstr_size) {
    return na_feed_parse_ex(buf, len, base_url, 0, feed, errstr, errstr_size);
}

/* ---- links that several items share (feed.h, "Links and ids") ---- */

struct link_key {
    const char *url;  /* the item's url, fragment included */
    size_t base_len;  /* bytes before '#' */
    const char *guid; /* "" when none */
    size_t idx;
};

static int link_key_cmp(const void *a, const void *b) {
    const struct link_key *x = a, *y = b;
    size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
    int c = memcmp(x->url, y->url, n);
    if (c || x->base_len != y->base_len) {
        return c ? c : (x->base_len < y->base_len ? -1 : 1);
    }
    if ((c = strcmp(x->url + x->base_len, y->url + y->base_len)) ||
        (c = strcmp(x->guid, y->guid))) {
        return c;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static bool same_base(const struct link_key *x, const struct link_key *y) {
    return x->base_len == y->base_len && !memcmp(x->url, y->url, x->base_len);
}

static bool same_link(const struct link_key *x, const struct link_key *y) {
    return same_base(x, y) && !strcmp(x->url + x->base_len, y->url + y->base_len);
}

/*
 * Item links come from the parsers canonical but with their fragment. A
 * fragment stays only where it tells items of one document apart: among
 * the items whose links differ only in the fragment, an item whose fragment
 * (or lack of one) no other of them has keeps it ("/live#post-2"). Items
 * whose whole links are equal but whose guids differ are told apart by the
 * guid (id_by_guid). Everywhere else, and always with NA_FEED_LITERAL, the
 * fragment goes, as na_url_canonical() drops it: the common one-item-per-
 * link document keeps the ids it always had.
 */
static na_err_t settle_links(struct na_feed *feed, bool distinguish) {
    struct link_key *keys = NULL;
    size_t n = 0;
    if (feed->items_cnt == 0) {
        return NA_OK;
    }
    keys = calloc(feed->items_cnt, sizeof(*keys));
    if (!keys) {
        return NA_ERR_NOMEM;
    }
    for (size_t i = 0; i < feed->items_cnt; i++) {
        struct na_article *a = &feed->items[i];
        if (!a->url) {
            continue;
        }
        size_t base = strcspn(a->url, "#");
        if (a->url[base] == '#' && a->url[base + 1] == '\0') {
            a->url[base] = '\0'; /* an empty fragment is none */
        }
        keys[n].url = a->url;
        keys[n].base_len = base;
        keys[n].guid = a->guid ? a->guid : "";
        keys[n].idx = i;
        n++;
    }
    qsort(keys, n, sizeof(*keys), link_key_cmp);
    for (size_t g = 0; g < n;) {
        size_t g_end = g + 1; /* [g, g_end): one link without fragment */
        while (g_end < n && same_base(&keys[g], &keys[g_end])) {
            g_end++;
        }
        for (size_t l = g; l < g_end;) {
            size_t l_end = l + 1; /* [l, l_end): one whole link */
            while (l_end < g_end && same_link(&keys[l], &keys[l_end])) {
                l_end++;
            }
            bool keep = distinguish && g_end - g > 1 && l_end - l == 1;
            for (size_t k = l; k < l_end; k++) {
                struct na_article *a = &feed->items[keys[k].idx];
                if (!keep) {
                    a->url[keys[k].base_len] = '\0';
                }
                /* a guid of its own among items of one link */
                a->id_by_guid =
                    distinguish && l_end - l > 1 && keys[k].guid[0] &&
                    (k == l || strcmp(keys[k - 1].guid, keys[k].guid)) &&
                    (k + 1 == l_end || strcmp(keys[k + 1].guid, keys[k].guid));
            }
            l = l_end;
        }
        g = g_end;
    }
    free(keys);
    return NA_OK;
}

/* na_feed_parse_ex() without the metrics; *format_out: the format
 * detected, also on failure (NULL when none was). */
static na_err_t parse_any(const char *buf, size_t len, const char *base_url,
                          unsigned flags, struct na_feed *feed, char *errstr,
                          size_t errstr_size, const char **format_out) {
    struct na_feed_ctx ctx;
    na_err_t err = NA_OK;
    char dummy[1];

    if (!errstr || errstr_size == 0) {
        errstr = dummy;
        errstr_size = sizeof(dummy);
    }
    errstr[0] = '\0';
    *format_out = NULL;
    na_feed_cleanup(feed);
    memset(&ctx, 0, sizeof(ctx));
    ctx.feed = feed;
    ctx.base_url = base_url;
    ctx.flags = flags;
    ctx.errstr = errstr;
    ctx.errstr_size = errstr_size;

    if (len > NA_MAX_FEED_BYTES) {
        snprintf(errstr, errstr_size, "document of %zu bytes exceeds %u", len,
                 NA_MAX_FEED_BYTES);
        return NA_ERR_TOO_LARGE;
    }
    if (!buf) {
        len = 0;
        buf = "";
    }
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
        buf += 3;
        len -= 3;
    }
    while (len > 0 && (*buf == ' ' || *buf == '\t' || *buf == '\n' || *buf == '\r')) {
        buf++;
        len--;
    }
    if (len == 0) {
        snprintf(errstr, errstr_size, "empty document");
        return NA_ERR_PARSE;
    }
    if (*buf == '{') {
        unsigned depth;
        size_t values;
        json_scan(buf, len, &depth, &values);
        if (depth > NA_MAX_FEED_DEPTH) {
            snprintf(errstr, errstr_size, "JSON nesting deeper than %u",
                     NA_MAX_FEED_DEPTH);
            err = NA_ERR_PARSE;
        } else if (values > NA_FEED_MAX_JSON_VALUES) {
            snprintf(errstr, errstr_size, "JSON document has more than %u values",
                     NA_FEED_MAX_JSON_VALUES);
            err = NA_ERR_TOO_LARGE;
        } else {
            feed->format = na_feed_format_jsonfeed.name;
            err = na_feed_format_jsonfeed.parse_json(&ctx, buf, len);
        }
    } else if (*buf == '<' ||
               (len >= 2 &&
                (((unsigned char)buf[0] == 0xfe && (unsigned char)buf[1] == 0xff) ||
                 ((unsigned char)buf[0] == 0xff && (unsigned char)buf[1] == 0xfe) ||
                 buf[0] == '\0'))) {
        err = parse_xml(&ctx, buf, len);
    } else if (*buf == '[') {
        snprintf(errstr, errstr_size, "JSON array is not a JSON Feed");
        err = NA_ERR_UNSUPPORTED;
    } else {
        snprintf(errstr, errstr_size, "not a feed: neither XML nor JSON");
        err = NA_ERR_PARSE;
    }
    if (!err) {
        err = settle_links(feed, !(flags & NA_FEED_LITERAL));
    }
    *format_out = feed->format;
    if (err) {
        if (err == NA_ERR_NOMEM && !errstr[0]) {
            snprintf(errstr, errstr_size, "out of memory");
        }
        na_feed_cleanup(feed);
    }
    return err;
}

/* Process-wide counters (the fetcher counts per feed): documents by format
 * and outcome, items kept and dropped by format. */
static void count(const char *format, na_err_t err, const struct na_feed *feed) {
    char labels[96];
    const char *result = "ok";
    if (err == NA_ERR_TOO_LARGE) {
        result = "too_large";
    } else if (err == NA_ERR_UNSUPPORTED) {
        result = "unsupported";
    } else if (err == NA_ERR_NOMEM) {
        result = "nomem";
    } else if (err) {
        result = "malformed";
    }
    snprintf(labels, sizeof(labels), "format=\"%s\",result=\"%s\"",
             format ? format : "unknown", result);
    na_metrics_inc("newsalert_feed_documents_total",
                   "Feed documents parsed, by detected format and outcome", labels);
    if (err) {
        return;
    }
    snprintf(labels, sizeof(labels), "format=\"%s\"", format);
    na_metric_add(na_metrics_get(NA_METRIC_COUNTER, "newsalert_feed_items_total",
                                 "Items read from feed documents", labels),
                  (double)feed->items_cnt);
    if (feed->items_dropped) {
        na_metric_add(
            na_metrics_get(NA_METRIC_COUNTER, "newsalert_feed_items_dropped_total",
                           "Items skipped: over the item cap, malformed, or empty",
                           labels),
            (double)feed->items_dropped);
    }
    if (feed->items_empty) {
        na_metric_add(na_metrics_get(NA_METRIC_COUNTER,
                                     "newsalert_feed_items_empty_total",
                                     "Items dropped for carrying none of title, link, "
                                     "guid, description and content",
                                     labels),
                      (double)feed->items_empty);
    }
}

na_err_t na_feed_parse_ex(const char *buf, size_t len, const char *base_url,
                          unsigned flags, struct na_feed *feed, char *errstr,
                          size_t errstr_size) {
    const char *format = NULL;
    na_err_t err =
        parse_any(buf, len, base_url, flags, feed, errstr, errstr_size, &format);
    /* one line, whatever a library put in its message (jansson quotes the
     * input near the error, line breaks included) */
    for (char *p = errstr; err && p && *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    count(format, err, feed);
    return err;
}
