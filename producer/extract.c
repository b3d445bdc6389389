#include "extract.h"

#include <errno.h>
#include <iconv.h>
#include <jansson.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "date.h"
#include "html.h"
#include "newsalert/article.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

/* ---------------------------------------------------------------------------
 * element classes */

/* What an element is to the extractor, by its tag. */
enum kind {
    K_INLINE = 0, /* text flows through it (a, b, span, unknown tags) */
    K_BLOCK,      /* a box of its own (div, section, li, ...) */
    K_PARA,       /* a paragraph: scored to its parent (p, pre) */
    K_DROP,       /* never text: removed with its contents */
    K_BR,         /* a line break */
};

struct tag_info {
    const char *name;
    enum kind kind;
    int base; /* initial candidate score */
};

/* Sorted by strcmp() for bsearch. */
static const struct tag_info tags[] = {
    {"address", K_BLOCK, -3},
    {"amp-ad", K_DROP, 0},
    {"amp-analytics", K_DROP, 0},
    {"amp-iframe", K_DROP, 0},
    {"amp-sidebar", K_DROP, 0},
    {"amp-social-share", K_DROP, 0},
    {"applet", K_DROP, 0},
    {"article", K_BLOCK, 5},
    {"aside", K_DROP, 0},
    {"audio", K_DROP, 0},
    {"blockquote", K_BLOCK, 3},
    {"body", K_BLOCK, 0},
    {"br", K_BR, 0},
    {"button", K_DROP, 0},
    {"canvas", K_DROP, 0},
    {"caption", K_BLOCK, 0},
    {"center", K_BLOCK, 0},
    {"dd", K_BLOCK, -3},
    {"details", K_BLOCK, 0},
    {"dialog", K_DROP, 0},
    {"dir", K_BLOCK, -3},
    {"div", K_BLOCK, 5},
    {"dl", K_BLOCK, -3},
    {"dt", K_BLOCK, -3},
    {"embed", K_DROP, 0},
    {"fieldset", K_BLOCK, -3},
    {"figcaption", K_DROP, 0},
    {"figure", K_DROP, 0},
    {"footer", K_DROP, 0},
    {"form", K_DROP, -3},
    {"frame", K_DROP, 0},
    {"frameset", K_DROP, 0},
    {"h1", K_BLOCK, -5},
    {"h2", K_BLOCK, -5},
    {"h3", K_BLOCK, -5},
    {"h4", K_BLOCK, -5},
    {"h5", K_BLOCK, -5},
    {"h6", K_BLOCK, -5},
    {"head", K_DROP, 0},
    {"header", K_DROP, 0},
    {"hgroup", K_BLOCK, -5},
    {"hr", K_BR, 0},
    {"html", K_BLOCK, 0},
    {"iframe", K_DROP, 0},
    {"input", K_DROP, 0},
    {"label", K_DROP, 0},
    {"legend", K_DROP, 0},
    {"li", K_BLOCK, -3},
    {"link", K_DROP, 0},
    {"main", K_BLOCK, 5},
    {"map", K_DROP, 0},
    {"math", K_DROP, 0},
    {"menu", K_DROP, 0},
    {"meta", K_DROP, 0},
    {"nav", K_DROP, 0},
    {"noscript", K_DROP, 0},
    {"object", K_DROP, 0},
    {"ol", K_BLOCK, -3},
    {"option", K_DROP, 0},
    {"p", K_PARA, 0},
    {"picture", K_DROP, 0},
    {"pre", K_PARA, 3},
    {"script", K_DROP, 0},
    {"section", K_BLOCK, 0},
    {"select", K_DROP, 0},
    {"source", K_DROP, 0},
    {"style", K_DROP, 0},
    {"summary", K_BLOCK, 0},
    {"svg", K_DROP, 0},
    {"table", K_BLOCK, 0},
    {"tbody", K_BLOCK, 0},
    {"td", K_BLOCK, 3},
    {"template", K_DROP, 0},
    {"textarea", K_DROP, 0},
    {"tfoot", K_BLOCK, 0},
    {"th", K_BLOCK, -5},
    {"thead", K_BLOCK, 0},
    {"title", K_DROP, 0},
    {"tr", K_BLOCK, 0},
    {"track", K_DROP, 0},
    {"ul", K_BLOCK, -3},
    {"video", K_DROP, 0},
};

static int tag_cmp(const void *key, const void *elem) {
    return strcmp(key, ((const struct tag_info *)elem)->name);
}

static const struct tag_info *tag_of(const xmlNode *n) {
    char lower[32];
    size_t i;
    const char *name = (const char *)n->name;
    for (i = 0; name[i] && i + 1 < sizeof(lower); i++) {
        char c = name[i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    if (name[i]) {
        return NULL;
    }
    lower[i] = '\0';
    return bsearch(lower, tags, sizeof(tags) / sizeof(tags[0]), sizeof(tags[0]), tag_cmp);
}

static bool is_tag(const xmlNode *n, const char *name) {
    return n && n->type == XML_ELEMENT_NODE && !strcasecmp((const char *)n->name, name);
}

static bool is_heading(const xmlNode *n) {
    const char *s = (const char *)n->name;
    return (s[0] == 'h' || s[0] == 'H') && s[1] >= '1' && s[1] <= '6' && !s[2];
}

/* Words of class and id names. A word of `never` marks what is never the
 * story; a word of `unless` what is not, unless a word of `story` says so
 * too ("content-with-sidebar" stays, "article-share" goes). */
static const char *const never_words[] = {
    "ad",       "ads",           "adslot",          "adunit",       "advert",
    "adverts",  "advertisement", "advertising",     "breadcrumb",   "breadcrumbs",
    "byline",   "bylines",       "caption",         "comment",      "comments",
    "consent",  "cookie",        "cookies",         "copyright",    "credit",
    "credits",  "disclaimer",    "disqus",          "gdpr",         "legal",
    "meta",     "modal",         "newsletter",      "outbrain",     "pagination",
    "paywall",  "popular",       "popup",           "promo",        "promos",
    "promoted", "recommended",   "recommendations", "related",      "share",
    "sharebar", "shares",        "sharing",         "signup",       "social",
    "sponsor",  "sponsored",     "subscribe",       "subscription", "taboola",
    "tags",     "trending",      "tweet",
};
static const char *const unless_words[] = {
    "aside",     "author",  "banner",   "bio",    "community", "extra",   "footer",
    "header",    "hidden",  "masthead", "menu",   "nav",       "navbar",  "navigation",
    "overlay",   "print",   "rail",     "remark", "replies",   "sidebar", "skip",
    "timestamp", "toolbar", "tools",    "widget", "widgets",
};
static const char *const story_words[] = {
    "article", "body", "content", "entry", "main", "post", "prose", "story", "text",
};

static bool in_list(const char *w, size_t len, const char *const *list, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        if (strlen(list[i]) == len && !strncasecmp(w, list[i], len)) {
            return true;
        }
    }
    return false;
}

#define LIST(l) l, sizeof(l) / sizeof(l[0])

struct words {
    bool never, unless, story;
};

/* Split @p s into words of letters and digits and note which lists they hit. */
static void scan_words(const char *s, struct words *w) {
    while (s && *s) {
        size_t n = 0;
        while (s[n] && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                        (s[n] >= '0' && s[n] <= '9'))) {
            n++;
        }
        if (n) {
            w->never |= in_list(s, n, LIST(never_words));
            w->unless |= in_list(s, n, LIST(unless_words));
            w->story |= in_list(s, n, LIST(story_words));
            s += n;
        } else {
            s++;
        }
    }
}

/* Attribute @p name of @p n; borrowed from the tree (attributes of an HTML
 * tree are one text node), or NULL. */
static const char *attr(const xmlNode *n, const char *name) {
    for (const xmlAttr *a = n->properties; a; a = a->next) {
        if (!strcasecmp((const char *)a->name, name)) {
            if (a->children && a->children->type == XML_TEXT_NODE && !a->children->next) {
                return (const char *)a->children->content;
            }
            return "";
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------------
 * per-element state, kept in xmlNode._private */

struct info {
    xmlNode *node;
    const struct tag_info *tag;
    bool removed;
    bool has_block;    /* itself a block, or one among its descendants */
    bool block_inside; /* a block among its descendants */
    bool candidate;
    bool keep;  /* a sibling written out with the chosen content */
    int weight; /* class and id words: +25, -25 or 0 */
    double score;
    size_t chars; /* characters of text (whitespace runs count one) */
    size_t link_chars;
    size_t commas;
    size_t paras, imgs, lis, inputs;
};

static struct info *info_of(const xmlNode *n) {
    return n && n->type == XML_ELEMENT_NODE ? n->_private : NULL;
}

static bool removed(const xmlNode *n) {
    const struct info *i = info_of(n);
    return i && i->removed;
}

static double link_density(const struct info *i) {
    return i->chars ? (double)i->link_chars / (double)i->chars : 0.0;
}

/* Characters and commas of a text node, whitespace runs counted once. */
static void text_stats(const char *s, size_t *chars, size_t *commas) {
    bool space = true;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == '\f') {
            if (!space) {
                (*chars)++;
            }
            space = true;
            continue;
        }
        space = false;
        if ((*p & 0xc0) != 0x80) {
            (*chars)++;
        }
        if (*p == ',') {
            (*commas)++;
        } else if (*p == 0xef && p[1] == 0xbc && p[2] == 0x8c) {
            (*commas)++; /* U+FF0C FULLWIDTH COMMA */
        } else if (*p == 0xe3 && p[1] == 0x80 && p[2] == 0x81) {
            (*commas)++; /* U+3001 IDEOGRAPHIC COMMA */
        }
    }
}

/* ---------------------------------------------------------------------------
 * the document: elements in document order */

struct doc {
    htmlDocPtr doc;
    struct info *els; /* pre-order */
    size_t cnt;
};

static bool hidden(const xmlNode *n) {
    const char *v;
    if (attr(n, "hidden")) {
        return true;
    }
    if ((v = attr(n, "aria-hidden")) && !strcasecmp(v, "true")) {
        return true;
    }
    if ((v = attr(n, "style"))) {
        char compact[256];
        size_t k = 0;
        for (; *v && k + 1 < sizeof(compact); v++) {
            if (*v != ' ' && *v != '\t' && *v != '\n') {
                compact[k++] = (char)(*v >= 'A' && *v <= 'Z' ? *v + 32 : *v);
            }
        }
        compact[k] = '\0';
        if (strstr(compact, "display:none") || strstr(compact, "visibility:hidden")) {
            return true;
        }
    }
    return false;
}

/* ARIA roles of what is not the story. */
static bool role_removed(const xmlNode *n) {
    static const char *const roles[] = {
        "alert", "banner",  "complementary", "contentinfo", "dialog",
        "menu",  "menubar", "navigation",    "search",      "toolbar"};
    const char *v = attr(n, "role");
    return v && in_list(v, strlen(v), LIST(roles));
}

/* Step 1 of extract.h: what is removed before scoring; the weight of the
 * rest. */
static void classify(struct info *i) {
    xmlNode *n = i->node;
    struct info *parent = info_of(n->parent);
    struct words w = {false, false, false};
    bool keeper = is_tag(n, "article") || is_tag(n, "main") || is_tag(n, "body") ||
                  is_tag(n, "html");
    if (parent && parent->removed) {
        i->removed = true;
        return;
    }
    scan_words(attr(n, "class"), &w);
    scan_words(attr(n, "id"), &w);
    i->weight = (w.story ? 25 : 0) - (w.never || w.unless ? 25 : 0);
    if ((i->tag && i->tag->kind == K_DROP) || hidden(n) || (!keeper && role_removed(n))) {
        i->removed = true;
        return;
    }
    if (!keeper && (w.never || (w.unless && !w.story))) {
        i->removed = true;
    }
}

/* Collect the elements in document order, iteratively. */
static na_err_t collect(struct doc *d, xmlNode *root) {
    size_t size = 0;
    for (xmlNode *n = root; n;) {
        if (n->type == XML_ELEMENT_NODE) {
            if (d->cnt == size) {
                size_t ns = size ? size * 2 : 256;
                struct info *v = realloc(d->els, ns * sizeof(*v));
                if (!v) {
                    return NA_ERR_NOMEM;
                }
                d->els = v;
                size = ns;
            }
            memset(&d->els[d->cnt], 0, sizeof(d->els[0]));
            d->els[d->cnt].node = n;
            d->els[d->cnt].tag = tag_of(n);
            d->cnt++;
            if (n->children) {
                n = n->children;
                continue;
            }
        }
        while (n && !n->next && n != root) {
            n = n->parent;
        }
        if (!n || n == root) {
            break;
        }
        n = n->next;
    }
    /* _private only now: realloc moved the array while collecting */
    for (size_t k = 0; k < d->cnt; k++) {
        d->els[k].node->_private = &d->els[k];
    }
    return NA_OK;
}

/* Text statistics bottom-up: children come after their parent in document
 * order, so walking it backwards sees every child first. */
static void stats(struct doc *d) {
    for (size_t k = d->cnt; k-- > 0;) {
        struct info *i = &d->els[k];
        if (i->removed) {
            continue;
        }
        const char *name = (const char *)i->node->name;
        if (i->tag && (i->tag->kind == K_BLOCK || i->tag->kind == K_PARA)) {
            i->has_block = true;
        }
        for (xmlNode *c = i->node->children; c; c = c->next) {
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
                if (c->content) {
                    text_stats((const char *)c->content, &i->chars, &i->commas);
                }
            } else if (c->type == XML_ELEMENT_NODE) {
                struct info *ci = info_of(c);
                if (ci->removed) {
                    continue;
                }
                i->chars += ci->chars;
                i->link_chars += ci->link_chars;
                i->commas += ci->commas;
                i->paras += ci->paras;
                i->imgs += ci->imgs;
                i->lis += ci->lis;
                i->inputs += ci->inputs;
                i->block_inside |= ci->has_block;
            }
        }
        i->has_block |= i->block_inside;
        if (!strcasecmp(name, "a")) {
            i->link_chars = i->chars;
        } else if (!strcasecmp(name, "p")) {
            i->paras++;
        } else if (!strcasecmp(name, "img") || !strncasecmp(name, "amp-img", 7)) {
            i->imgs++;
        } else if (!strcasecmp(name, "li")) {
            i->lis++;
        }
    }
}

/* ---------------------------------------------------------------------------
 * scoring (step 2) and choosing (step 3) */

static void add_score(struct info *i, double points) {
    if (!i->candidate) {
        i->candidate = true;
        i->score = i->tag ? i->tag->base : 0;
    }
    i->score += points;
}

/* A run of text of @p chars characters and @p commas commas in the block
 * @p owner (for a paragraph: in its parent). */
static void score_run(xmlNode *owner, bool para, size_t chars, size_t commas) {
    static const double divisor[] = {1, 2, 6, 9, 12};
    if (chars < 25) {
        return;
    }
    double points = 1.0 + (double)commas + (double)(chars / 100 < 3 ? chars / 100 : 3);
    xmlNode *n = para ? owner->parent : owner;
    for (size_t level = 0; level < 5 && n && n->type == XML_ELEMENT_NODE;
         level++, n = n->parent) {
        add_score(info_of(n), points / divisor[level]);
    }
}

/* Score the runs of text of every block: a <p> as a whole, and in other
 * blocks the text between their block children. */
static void score(struct doc *d) {
    for (size_t k = 0; k < d->cnt; k++) {
        struct info *i = &d->els[k];
        if (i->removed || !i->has_block || !i->tag || i->tag->kind == K_INLINE) {
            continue;
        }
        if (is_heading(i->node) || is_tag(i->node, "li") || is_tag(i->node, "dt") ||
            is_tag(i->node, "th")) {
            continue; /* headlines and list items are not prose */
        }
        bool para = i->tag->kind == K_PARA;
        size_t chars = 0, commas = 0;
        for (xmlNode *c = i->node->children;; c = c->next) {
            struct info *ci = info_of(c);
            if (!c || (ci && !ci->removed && ci->has_block)) {
                score_run(i->node, para, chars, commas);
                chars = commas = 0;
                if (!c) {
                    break;
                }
                continue;
            }
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
                if (c->content) {
                    text_stats((const char *)c->content, &chars, &commas);
                }
            } else if (ci && !ci->removed) {
                chars += ci->chars;
                commas += ci->commas;
            }
        }
    }
}

static bool is_below(const xmlNode *n, const xmlNode *ancestor) {
    for (; n; n = n->parent) {
        if (n == ancestor) {
            return true;
        }
    }
    return false;
}

/* Another story's teaser: a heading that is a link to elsewhere. */
static bool has_linked_heading(const xmlNode *n) {
    const xmlNode *c = n->children;
    size_t budget = 2000;
    while (c && budget--) {
        const struct info *i = info_of(c);
        if (i && !i->removed && is_heading(c) && i->chars && link_density(i) > 0.5) {
            return true;
        }
        if (i && !i->removed && c->children && !is_heading(c)) {
            c = c->children;
            continue;
        }
        while (c && !c->next && c->parent != n) {
            c = c->parent;
        }
        c = c ? c->next : NULL;
    }
    return false;
}

/* Posts of a series: siblings of one tag and class (or <article>s and
 * <section>s), each with prose and few links, none a teaser. */
static bool same_kind(const xmlNode *a, const xmlNode *b) {
    const char *ca = attr(a, "class"), *cb = attr(b, "class");
    if (strcasecmp((const char *)a->name, (const char *)b->name)) {
        return false;
    }
    if (ca && cb && *ca) {
        return !strcmp(ca, cb);
    }
    return !ca && !cb && (is_tag(a, "article") || is_tag(a, "section"));
}

static bool post_like(const xmlNode *n) {
    const struct info *i = info_of(n);
    return i && !i->removed && i->chars >= 25 && link_density(i) < 0.3 &&
           !has_linked_heading(n);
}

/* The parent of @p n when @p n is one of at least three posts of a series
 * (a live blog, a story cut in blocks), else NULL. */
static xmlNode *series_parent(const xmlNode *n) {
    size_t posts = 0, seen = 0;
    if (!n->parent || n->parent->type != XML_ELEMENT_NODE || is_tag(n->parent, "html")) {
        return NULL;
    }
    for (const xmlNode *s = n->parent->children; s && seen < 1000; s = s->next, seen++) {
        if (s->type == XML_ELEMENT_NODE && same_kind(s, n) && post_like(s)) {
            posts++;
        }
    }
    return posts >= 3 ? n->parent : NULL;
}

/* The best candidate, or its ancestor when several good candidates sit
 * below that ancestor. */
static struct info *choose(struct doc *d) {
    struct info *best[5] = {NULL, NULL, NULL, NULL, NULL};
    for (size_t k = 0; k < d->cnt; k++) {
        struct info *i = &d->els[k];
        if (i->removed || !i->candidate) {
            continue;
        }
        /* Class words count in full for a block of 500 characters or more,
         * less for less: "Text" on a byline's class is typography, "story"
         * on a body of prose is what it says. */
        double weight = i->weight;
        if (weight > 0 && i->chars < 500) {
            weight *= (double)i->chars / 500.0;
        }
        i->score = (i->score + weight) * (1.0 - link_density(i));
        for (size_t b = 0; b < 5; b++) {
            if (!best[b] || i->score > best[b]->score) {
                memmove(&best[b + 1], &best[b], (4 - b) * sizeof(best[0]));
                best[b] = i;
                break;
            }
        }
    }
    struct info *top = best[0];
    struct info *alt[4];
    size_t alts = 0;
    if (!top) {
        return NULL;
    }
    /* good candidates apart from top, none inside another (a post and its
     * text block are one) */
    for (size_t b = 1; b < 5; b++) {
        bool apart = best[b] && best[b]->score >= 0.75 * top->score &&
                     !is_below(best[b]->node, top->node) &&
                     !is_below(top->node, best[b]->node);
        for (size_t k = 0; apart && k < alts; k++) {
            apart = !is_below(best[b]->node, alt[k]->node) &&
                    !is_below(alt[k]->node, best[b]->node);
        }
        if (apart) {
            alt[alts++] = best[b];
        }
    }
    /* one post of a series: the series */
    xmlNode *up = top->node;
    for (int level = 0; level < 3 && up && up->type == XML_ELEMENT_NODE &&
                        !is_tag(up, "body") && !is_tag(up, "html");
         level++, up = up->parent) {
        xmlNode *series = series_parent(up);
        if (series) {
            return info_of(series);
        }
    }
    if (alts < 2) {
        return top;
    }
    xmlNode *a = top->node->parent;
    for (int level = 0; level < 16 && a && a->type == XML_ELEMENT_NODE;
         level++, a = a->parent) {
        size_t below = 0;
        if (is_tag(a, "body") || is_tag(a, "html")) {
            break;
        }
        for (size_t k = 0; k < alts; k++) {
            below += is_below(alt[k]->node, a);
        }
        if (below >= 2) { /* three with top itself */
            return info_of(a);
        }
    }
    return top;
}

/* ---------------------------------------------------------------------------
 * writing the text out (step 4) */

enum brk { BRK_NONE = 0, BRK_SPACE, BRK_LINE, BRK_PARA };

struct out {
    struct na_buf buf;
    enum brk pending;
};

static void out_break(struct out *o, enum brk b) {
    if (b > o->pending) {
        o->pending = b;
    }
}

static void out_text(struct out *o, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
            out_break(o, BRK_SPACE);
            continue;
        }
        if (c == 0xc2 && (unsigned char)s[1] == 0xa0) { /* U+00A0 */
            out_break(o, BRK_SPACE);
            s++;
            continue;
        }
        if (o->pending && o->buf.len) {
            static const char *const seps[] = {"", " ", "\n", "\n\n"};
            na_buf_puts(&o->buf, seps[o->pending]);
        }
        o->pending = BRK_NONE;
        na_buf_append(&o->buf, s, 1);
    }
}

/* Whole text of @p n (its non-removed descendants) into @p b, raw. */
static void node_text(const xmlNode *n, struct na_buf *b) {
    const xmlNode *c = n->children;
    while (c && b->len < 4096) {
        if (c->type == XML_TEXT_NODE && c->content) {
            na_buf_puts(b, (const char *)c->content);
        } else if (c->type == XML_ELEMENT_NODE && !removed(c) && c->children) {
            c = c->children;
            continue;
        }
        while (c && !c->next && c->parent != n) {
            c = c->parent;
        }
        c = c ? c->next : NULL;
    }
}

/* The text of @p n, trimmed and with whitespace collapsed, when it has at
 * most @p max bytes; else NULL. free(). */
static char *short_text(const xmlNode *n, size_t max) {
    struct na_buf b;
    char *t;
    na_buf_init(&b);
    node_text(n, &b);
    if (b.len > 4 * max) {
        na_buf_cleanup(&b);
        return NULL;
    }
    t = na_html_plain_text(b.data ? b.data : "", b.len);
    na_buf_cleanup(&b);
    if (t && strlen(t) > max) {
        free(t);
        return NULL;
    }
    if (t) {
        na_html_flatten(t);
    }
    return t;
}

/* Blocks whose whole text is one of these labels are furniture. */
static bool is_label(const char *t) {
    static const char *const labels[] = {
        "advertisement",
        "advertising",
        "ad",
        "sponsored",
        "continue reading",
        "read more",
        "read more:",
        "related",
        "related:",
        "related stories",
        "related articles",
        "share",
        "share this article",
        "share this story",
        "skip advertisement",
        "story continues below",
        "story continues below advertisement",
        "scroll to continue with content",
        "more on this story",
        "see also",
    };
    size_t len = strlen(t);
    while (len && (t[len - 1] == '.' || t[len - 1] == ' ')) {
        len--;
    }
    return len && in_list(t, len, LIST(labels));
}

/* Step 4: is @p i, inside the chosen content, furniture to leave out? */
static bool drop_in_content(const struct info *i, const struct info *top) {
    xmlNode *n = i->node;
    double ld = link_density(i);
    if (i == top) {
        return false;
    }
    if (is_tag(n, "h1")) {
        return true;
    }
    if (i->tag && i->tag->kind == K_PARA) {
        /* "Read more: <a>..</a>" and paragraphs that are one link */
        return i->chars < 200 && ld > 0.5;
    }
    if (!i->tag || i->tag->kind != K_BLOCK || is_heading(n) || is_tag(n, "li") ||
        is_tag(n, "tr") || is_tag(n, "td") || is_tag(n, "th") || is_tag(n, "tbody") ||
        is_tag(n, "thead") || is_tag(n, "dt") || is_tag(n, "dd")) {
        return false;
    }
    if (i->commas >= 10) {
        return false;
    }
    if (i->imgs > 1 && (double)i->paras / (double)i->imgs < 0.5) {
        return true; /* a gallery */
    }
    if (i->inputs > i->paras / 3) {
        return true; /* a form */
    }
    if (i->chars < 25 && ld > 0) {
        return true;
    }
    if (i->weight < 25 && ld > 0.2) {
        return true;
    }
    return i->weight >= 25 && ld > 0.5;
}

struct meta;
static bool furniture(const xmlNode *n, const struct meta *m);
static bool headline(const xmlNode *n, const struct info *i, const struct meta *m);

/* Write @p top's text out, leaving furniture out. Iterative. */
static void write_node(struct out *o, const struct info *top, const struct meta *m) {
    const xmlNode *root = top->node;
    const xmlNode *n = root;
    bool pre = false;
    for (;;) {
        bool descend = false;
        if (n->type == XML_ELEMENT_NODE) {
            const struct info *i = info_of(n);
            if (!i->removed && !drop_in_content(i, top)) {
                bool block = i->tag && i->tag->kind != K_INLINE && i->tag->kind != K_BR;
                if (n != root && i->chars && i->chars <= 200 &&
                    ((block && furniture(n, m)) || (!block && headline(n, i, m)))) {
                    /* left out */
                } else {
                    if (i->tag && i->tag->kind == K_BR) {
                        out_break(o, is_tag(n, "hr") ? BRK_PARA : BRK_LINE);
                    } else if (i->tag && i->tag->kind != K_INLINE) {
                        out_break(o, is_tag(n, "li") || is_tag(n, "tr") ||
                                             is_tag(n, "dt") || is_tag(n, "dd")
                                         ? BRK_LINE
                                     : is_tag(n, "td") || is_tag(n, "th") ? BRK_SPACE
                                                                          : BRK_PARA);
                    }
                    pre = pre || is_tag(n, "pre");
                    descend = n->children != NULL;
                }
            }
        } else if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
                   n->content) {
            if (pre && strchr((const char *)n->content, '\n')) {
                const char *s = (const char *)n->content;
                for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
                    char *line = na_strndup(s, (size_t)(nl - s));
                    if (line) {
                        out_text(o, line);
                        free(line);
                    }
                    out_break(o, BRK_LINE);
                }
                out_text(o, s);
            } else {
                out_text(o, (const char *)n->content);
            }
        }
        if (descend) {
            n = n->children;
            continue;
        }
        /* leave: close the blocks we climb out of */
        while (n != root && !n->next) {
            n = n->parent;
            const struct info *i = info_of(n);
            if (i && i->tag && i->tag->kind != K_INLINE && i->tag->kind != K_BR) {
                out_break(o, is_tag(n, "li") || is_tag(n, "tr")   ? BRK_LINE
                             : is_tag(n, "td") || is_tag(n, "th") ? BRK_SPACE
                                                                  : BRK_PARA);
            }
            if (is_tag(n, "pre")) {
                pre = false;
            }
        }
        if (n == root) {
            break;
        }
        n = n->next;
    }
    out_break(o, BRK_PARA);
}

/* A sibling of prose (step 3): a paragraph longer than 80 characters with
 * few links, or a shorter one without links ending a sentence; or a block
 * of such paragraphs, almost without links. */
static bool prose_sibling(const struct info *s) {
    double ld = link_density(s);
    bool para = s->tag && (s->tag->kind == K_PARA ||
                           (s->tag->kind == K_BLOCK && !s->block_inside &&
                            !is_heading(s->node) && !is_tag(s->node, "li")));
    if (s->tag && s->tag->kind == K_BLOCK && s->block_inside) {
        return s->chars > 80 && ld < 0.1 && !has_linked_heading(s->node);
    }
    if (!para || s->chars == 0) {
        return false;
    }
    if (s->chars > 80) {
        return ld < 0.25;
    }
    if (ld > 0) {
        return false;
    }
    char *t = short_text(s->node, 400);
    bool ends = false;
    if (t) {
        size_t len = strlen(t);
        while (len && strchr("\"')\xe2\x80\x9d\x99", t[len - 1])) {
            len--; /* closing quotes and brackets (also the tail of U+201D, U+2019) */
        }
        ends = len && strchr(".!?", t[len - 1]);
        free(t);
    }
    return ends;
}

/* Step 3's siblings and step 4: the chosen content as text. */
static void write_content(struct out *o, struct info *top, const struct meta *m) {
    xmlNode *parent = top->node->parent;
    if (!parent || parent->type != XML_ELEMENT_NODE || is_tag(top->node, "body") ||
        is_tag(top->node, "html")) {
        write_node(o, top, m);
        return;
    }
    double threshold = top->score * 0.2 > 10 ? top->score * 0.2 : 10;
    const char *top_class = attr(top->node, "class");
    for (xmlNode *c = parent->children; c; c = c->next) {
        struct info *s = info_of(c);
        if (!s || s->removed) {
            continue;
        }
        const char *cls = attr(c, "class");
        double bonus = top_class && *top_class && cls && !strcmp(cls, top_class)
                           ? top->score * 0.2
                           : 0;
        s->keep = s == top ||
                  (!has_linked_heading(c) &&
                   ((s->candidate && s->score + bonus >= threshold) || prose_sibling(s)));
    }
    for (xmlNode *c = parent->children; c; c = c->next) {
        struct info *s = info_of(c);
        if (!s || s->removed) {
            continue;
        }
        bool lead = false;
        if (!s->keep && is_heading(c) && !is_tag(c, "h1")) {
            /* a subheading just before a kept block */
            xmlNode *next = c->next;
            while (next && (next->type != XML_ELEMENT_NODE || removed(next))) {
                next = next->next;
            }
            lead = next && info_of(next)->keep;
        }
        if (s->keep || lead) {
            write_node(o, s, m);
        }
    }
}

/* ---------------------------------------------------------------------------
 * metadata */

/* Each value with the rank of its source (lower wins). */
struct meta {
    char *title;
    int title_rank;
    char *date;
    int date_rank;
    char *lang;
    int lang_rank;
    char **authors;
    size_t authors_cnt;
    int authors_rank;
    char *body; /* JSON-LD articleBody (or live updates), plain text */
};

#define RANK_NONE 1000

static void meta_init(struct meta *m) {
    memset(m, 0, sizeof(*m));
    m->title_rank = m->date_rank = m->lang_rank = m->authors_rank = RANK_NONE;
}

static void authors_free(char **v, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        free(v[i]);
    }
    free(v);
}

static void meta_cleanup(struct meta *m) {
    free(m->title);
    free(m->date);
    free(m->lang);
    authors_free(m->authors, m->authors_cnt);
    free(m->body);
}

/* @p t is the headline @p title, or its start before " | Site". */
static bool is_title(const char *t, const char *title) {
    size_t len = strlen(t);
    if (!title || !len || strncasecmp(t, title, len)) {
        return false;
    }
    return !title[len] || !strncmp(title + len, " |", 2) ||
           !strncmp(title + len, " -", 2) || !strncmp(title + len, " \xe2\x80\x93", 4) ||
           !strncmp(title + len, " \xe2\x80\x94", 4);
}

/* What comes before a name in a byline: "By ", "Posted by ", "Par ". */
static bool byline_lead(const char *t, size_t len) {
    static const char *const leads[] = {"by",  "posted by", "written by", "words by",
                                        "par", "von",       "por",        "av",
                                        "di",  "door",      "af"};
    while (len && (t[len - 1] == ' ' || t[len - 1] == ':')) {
        len--;
    }
    return len && in_list(t, len, LIST(leads));
}

/* A short block that is furniture, not story: a known label
 * ("Advertisement"), the headline again, or a byline (a line naming an
 * author of the metadata without ending a sentence). */
static bool furniture(const xmlNode *n, const struct meta *m) {
    char *t = short_text(n, 300);
    bool drop = false;
    if (!t) {
        return false;
    }
    size_t len = strlen(t);
    if (!len) {
        drop = false; /* only spaces (&nbsp;): nothing to judge */
    } else if (is_label(t) || is_title(t, m->title)) {
        drop = true;
    } else if (len <= 100 && !strchr(".!?", t[len - 1])) {
        for (size_t k = 0; k < m->authors_cnt && !drop; k++) {
            const char *at = strstr(t, m->authors[k]);
            drop = at && (at == t || byline_lead(t, (size_t)(at - t)));
        }
    }
    free(t);
    return drop;
}

/* An inline element (<b>, <font>) that is the headline again. */
static bool headline(const xmlNode *n, const struct info *i, const struct meta *m) {
    size_t title_len = m->title ? strlen(m->title) : 0;
    if (!title_len || i->chars > title_len || 2 * i->chars < title_len / 2) {
        return false; /* cheap: too long or too short to be the headline */
    }
    char *t = short_text(n, 300);
    bool same = t && is_title(t, m->title);
    free(t);
    return same;
}

/* One line of plain text from @p s, at most @p max bytes; NULL when empty. */
static char *one_line(const char *s, size_t max) {
    char *t = s ? na_html_plain_text(s, strlen(s)) : NULL;
    if (!t) {
        return NULL;
    }
    na_html_flatten(t);
    size_t len = na_utf8_cut(t, strlen(t), max);
    while (len && t[len - 1] == ' ') {
        len--;
    }
    t[len] = '\0';
    if (!len) {
        free(t);
        return NULL;
    }
    return t;
}

static void set_ranked(char **dst, int *dst_rank, const char *value, int rank,
                       size_t max) {
    char *v;
    if (rank >= *dst_rank || !value || !(v = one_line(value, max))) {
        return;
    }
    free(*dst);
    *dst = v;
    *dst_rank = rank;
}

/* A byline ("By Jane Doe and Sam Roe") into names. */
static void add_byline(char ***list, size_t *cnt, const char *byline) {
    char *t = one_line(byline, 256);
    char *s = t;
    if (!t) {
        return;
    }
    if (!strncasecmp(s, "by ", 3)) {
        s += 3;
    }
    while (*s) {
        size_t n = strlen(s);
        char *cut = NULL;
        const char *seps[] = {" and ", ", ", " & ", "; "};
        for (size_t k = 0; k < 4; k++) {
            char *f = strstr(s, seps[k]);
            if (f && (!cut || f < cut)) {
                cut = f;
                n = (size_t)(f - s);
            }
        }
        char *name = na_strndup(s, n);
        char *clean = name ? one_line(name, 200) : NULL;
        if (clean && strlen(clean) > 1 && !strstr(clean, "://")) {
            if (na_article_list_add(list, cnt, NA_MAX_AUTHORS, clean)) {
                free(clean);
                free(name);
                break;
            }
        }
        free(clean);
        free(name);
        if (!cut) {
            break;
        }
        s = cut + strcspn(cut, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    }
    free(t);
}

static void set_authors(struct meta *m, char **names, size_t cnt, int rank) {
    if (!cnt || rank >= m->authors_rank) {
        authors_free(names, cnt);
        return;
    }
    authors_free(m->authors, m->authors_cnt);
    m->authors = names;
    m->authors_cnt = cnt;
    m->authors_rank = rank;
}

/* ---- JSON-LD ---- */

static bool article_type(const char *t) {
    size_t len;
    if (!strncmp(t, "http://schema.org/", 18)) {
        t += 18;
    } else if (!strncmp(t, "https://schema.org/", 19)) {
        t += 19;
    }
    len = strlen(t);
    return (len >= 7 && !strcmp(t + len - 7, "Article")) || !strcmp(t, "BlogPosting") ||
           !strcmp(t, "LiveBlogPosting") || !strcmp(t, "Report");
}

static bool is_article(const json_t *obj) {
    const json_t *type = json_object_get(obj, "@type");
    size_t i;
    const json_t *v;
    if (json_is_string(type)) {
        return article_type(json_string_value(type));
    }
    json_array_foreach(type, i, v) {
        if (json_is_string(v) && article_type(json_string_value(v))) {
            return true;
        }
    }
    return false;
}

/* The first article object in @p root: itself, an element of an array, a
 * member of @graph or mainEntity; at most 4 levels down. */
static const json_t *find_article(const json_t *root, int depth) {
    size_t i;
    const json_t *v, *found;
    if (depth > 4) {
        return NULL;
    }
    if (json_is_array(root)) {
        json_array_foreach(root, i, v) {
            if (i >= 200) {
                break;
            }
            if ((found = find_article(v, depth + 1))) {
                return found;
            }
        }
        return NULL;
    }
    if (!json_is_object(root)) {
        return NULL;
    }
    if (is_article(root)) {
        return root;
    }
    if ((found = find_article(json_object_get(root, "@graph"), depth + 1)) ||
        (found = find_article(json_object_get(root, "mainEntity"), depth + 1))) {
        return found;
    }
    return NULL;
}

static const char *jstr(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Names of a JSON-LD author value: a name, a person or organisation, or a
 * list of those. */
static void jsonld_authors(const json_t *v, char ***list, size_t *cnt) {
    size_t i;
    const json_t *e;
    if (json_is_string(v)) {
        add_byline(list, cnt, json_string_value(v));
    } else if (json_is_object(v)) {
        const char *name = jstr(v, "name");
        if (name) {
            add_byline(list, cnt, name);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e) {
            if (i >= NA_MAX_AUTHORS) {
                break;
            }
            if (!json_is_array(e)) {
                jsonld_authors(e, list, cnt);
            }
        }
    }
}

/* Plain text of an articleBody (some are HTML). */
static char *body_text(const char *s) {
    size_t len = strlen(s);
    return memchr(s, '<', len) ? na_html_to_text(s, len) : na_html_plain_text(s, len);
}

static void jsonld_article(struct meta *m, const json_t *a) {
    const json_t *v;
    const char *s;
    char **names = NULL;
    size_t cnt = 0;
    set_ranked(&m->title, &m->title_rank, jstr(a, "headline"), 0, NA_MAX_TITLE_BYTES);
    set_ranked(&m->title, &m->title_rank, jstr(a, "name"), 1, NA_MAX_TITLE_BYTES);
    set_ranked(&m->date, &m->date_rank, jstr(a, "datePublished"), 0, 64);
    set_ranked(&m->date, &m->date_rank, jstr(a, "dateCreated"), 1, 64);
    v = json_object_get(a, "inLanguage");
    s = json_is_string(v) ? json_string_value(v) : jstr(v, "alternateName");
    set_ranked(&m->lang, &m->lang_rank, s, 20, 64);
    jsonld_authors(json_object_get(a, "author"), &names, &cnt);
    set_authors(m, names, cnt, 0);
    if (m->body) {
        return;
    }
    if ((s = jstr(a, "articleBody"))) {
        m->body = body_text(s);
        return;
    }
    /* a live blog: its updates, newest first as published */
    v = json_object_get(a, "liveBlogUpdate");
    if (json_is_object(v) || json_is_array(v)) {
        struct na_buf b;
        size_t i;
        const json_t *u;
        na_buf_init(&b);
        if (json_is_object(v)) {
            v = json_pack("[O]", v);
        } else {
            json_incref((json_t *)v);
        }
        json_array_foreach(v, i, u) {
            const char *h = jstr(u, "headline");
            const char *body = jstr(u, "articleBody");
            if (h) {
                na_buf_printf(&b, "%s\n\n", h);
            }
            if (body) {
                char *t = body_text(body);
                na_buf_printf(&b, "%s\n\n", t ? t : "");
                free(t);
            }
        }
        json_decref((json_t *)v);
        if (b.len) {
            m->body = na_html_plain_text(b.data, b.len);
        }
        na_buf_cleanup(&b);
    }
}

static void jsonld_script(struct meta *m, const xmlNode *script) {
    struct na_buf b;
    json_t *root;
    na_buf_init(&b);
    for (const xmlNode *c = script->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
            c->content) {
            na_buf_puts(&b, (const char *)c->content);
        }
    }
    if (!b.data || b.len > NA_EXTRACT_MAX_JSONLD_BYTES || b.oom) {
        na_buf_cleanup(&b);
        return;
    }
    root = json_loadb(b.data, b.len, 0, NULL);
    na_buf_cleanup(&b);
    const json_t *a = root ? find_article(root, 0) : NULL;
    if (a) {
        jsonld_article(m, a);
    }
    json_decref(root);
}

/* ---- <meta> and the page ---- */

struct meta_name {
    const char *name;
    int rank;
};

static int meta_rank(const char *key, const struct meta_name *list, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        if (!strcasecmp(key, list[i].name)) {
            return list[i].rank;
        }
    }
    return RANK_NONE;
}

static const struct meta_name date_metas[] = {
    {"article:published_time", 1},
    {"og:article:published_time", 1},
    {"datePublished", 2},
    {"pubdate", 3},
    {"publishdate", 3},
    {"publish-date", 3},
    {"publish_date", 3},
    {"article.published", 3},
    {"dc.date.issued", 4},
    {"dcterms.issued", 4},
    {"dcterms.created", 4},
    {"dc.date", 5},
    {"parsely-pub-date", 5},
    {"sailthru.date", 5},
    {"date", 6},
};
static const struct meta_name author_metas[] = {
    {"author", 1},          {"article:author", 2},  {"byl", 2},
    {"dc.creator", 3},      {"dcterms.creator", 3}, {"parsely-author", 4},
    {"sailthru.author", 4},
};
static const struct meta_name title_metas[] = {
    {"og:title", 2},
    {"twitter:title", 3},
};
static const struct meta_name lang_metas[] = {
    {"content-language", 10},
    {"language", 11},
    {"dc.language", 12},
    {"og:locale", 30},
};

static void meta_tag(struct meta *m, const xmlNode *n) {
    const char *content = attr(n, "content");
    const char *keys[] = {attr(n, "property"), attr(n, "name"), attr(n, "itemprop"),
                          attr(n, "http-equiv")};
    if (!content) {
        return;
    }
    for (size_t k = 0; k < 4; k++) {
        const char *key = keys[k];
        int r;
        if (!key) {
            continue;
        }
        if ((r = meta_rank(key, LIST(date_metas))) < RANK_NONE) {
            set_ranked(&m->date, &m->date_rank, content, r, 64);
        } else if ((r = meta_rank(key, LIST(title_metas))) < RANK_NONE) {
            set_ranked(&m->title, &m->title_rank, content, r, NA_MAX_TITLE_BYTES);
        } else if ((r = meta_rank(key, LIST(lang_metas))) < RANK_NONE) {
            set_ranked(&m->lang, &m->lang_rank, content, r, 64);
        } else if ((r = meta_rank(key, LIST(author_metas))) < RANK_NONE &&
                   r < m->authors_rank && !strstr(content, "://")) {
            char **names = NULL;
            size_t cnt = 0;
            add_byline(&names, &cnt, content);
            set_authors(m, names, cnt, r);
        }
    }
}

/* The text of @p n, one line, at most @p max bytes; NULL when empty. */
static char *text_of(const xmlNode *n, size_t max) {
    struct na_buf b;
    char *t;
    na_buf_init(&b);
    for (const xmlNode *c = n->children; c && b.len < 4 * max;) {
        if (c->type == XML_TEXT_NODE && c->content) {
            na_buf_puts(&b, (const char *)c->content);
        } else if (c->type == XML_ELEMENT_NODE && c->children && !is_tag(c, "script") &&
                   !is_tag(c, "style")) {
            c = c->children;
            continue;
        }
        while (c && !c->next && c->parent != n) {
            c = c->parent;
        }
        c = c ? c->next : NULL;
    }
    t = one_line(b.data ? b.data : "", max);
    na_buf_cleanup(&b);
    return t;
}

/* Every element, removed or not: <meta>, JSON-LD, <html lang>, <title>,
 * <h1>, bylines and <time>. */
static void read_meta(struct doc *d, struct meta *m) {
    for (size_t k = 0; k < d->cnt; k++) {
        const xmlNode *n = d->els[k].node;
        const char *name = (const char *)n->name;
        const char *v;
        char *t;
        if (!strcasecmp(name, "meta")) {
            meta_tag(m, n);
        } else if (!strcasecmp(name, "script")) {
            if ((v = attr(n, "type")) && !strncasecmp(v, "application/ld+json", 19)) {
                jsonld_script(m, n);
            }
        } else if (!strcasecmp(name, "html")) {
            set_ranked(&m->lang, &m->lang_rank, attr(n, "lang"), 0, 64);
            set_ranked(&m->lang, &m->lang_rank, attr(n, "xml:lang"), 1, 64);
        } else if (!strcasecmp(name, "title") && m->title_rank > 6) {
            if ((t = text_of(n, NA_MAX_TITLE_BYTES))) {
                set_ranked(&m->title, &m->title_rank, t, 6, NA_MAX_TITLE_BYTES);
                free(t);
            }
        } else if (!strcasecmp(name, "h1") && m->title_rank > 5) {
            if ((t = text_of(n, NA_MAX_TITLE_BYTES))) {
                set_ranked(&m->title, &m->title_rank, t, 5, NA_MAX_TITLE_BYTES);
                free(t);
            }
        } else if (!strcasecmp(name, "time")) {
            bool published = attr(n, "pubdate") ||
                             ((v = attr(n, "itemprop")) && !strcmp(v, "datePublished"));
            if (published && m->date_rank > 7) {
                if ((v = attr(n, "datetime"))) {
                    set_ranked(&m->date, &m->date_rank, v, 7, 64);
                } else if ((t = text_of(n, 64))) {
                    set_ranked(&m->date, &m->date_rank, t, 7, 64);
                    free(t);
                }
            }
        }
        /* a byline in the page */
        if (m->authors_rank > 5) {
            const char *rel = attr(n, "rel");
            const char *prop = attr(n, "itemprop");
            const char *cls = attr(n, "class");
            bool byline = (rel && !strcasecmp(rel, "author")) ||
                          (prop && !strcasecmp(prop, "author"));
            if (!byline && cls) {
                for (const char *c = cls; *c && !byline; c++) {
                    byline = !strncasecmp(c, "byline", 6);
                }
            }
            if (byline && (t = text_of(n, 200))) {
                char **names = NULL;
                size_t cnt = 0;
                add_byline(&names, &cnt, t);
                set_authors(m, names, cnt, 6);
                free(t);
            }
        }
    }
}

/* A language tag: letters, digits and '-' ('_' becomes '-'), <= 35 bytes. */
static char *lang_tag(const char *s) {
    char tag[36];
    size_t n = 0;
    if (!s) {
        return NULL;
    }
    for (; *s && *s != ',' && *s != ';' && *s != ' '; s++) {
        char c = *s == '_' ? '-' : *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-') ||
            n + 1 >= sizeof(tag)) {
            return NULL;
        }
        tag[n++] = c;
    }
    return n ? na_strndup(tag, n) : NULL;
}

/* ---------------------------------------------------------------------------
 * encoding */

static char lower_ascii(char c) {
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* The value after "charset" (spaces, '=', a quote) in s[0..len), into @p out. */
static bool charset_after(const char *s, size_t len, char *out, size_t size) {
    for (size_t i = 0; i + 7 <= len; i++) {
        if (strncasecmp(s + i, "charset", 7)) {
            continue;
        }
        size_t k = i + 7;
        while (k < len && (s[k] == ' ' || s[k] == '\t')) {
            k++;
        }
        if (k >= len || s[k] != '=') {
            continue;
        }
        k++;
        while (k < len && (s[k] == ' ' || s[k] == '"' || s[k] == '\'')) {
            k++;
        }
        size_t n = 0;
        while (k < len && n + 1 < size &&
               ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                (s[k] >= '0' && s[k] <= '9') || strchr("-_.:", s[k]))) {
            out[n++] = lower_ascii(s[k++]);
        }
        out[n] = '\0';
        return n > 0;
    }
    return false;
}

/* A <meta> naming a charset in the first 4 KiB, or the XML declaration. */
static bool prescan(const char *buf, size_t len, char *out, size_t size) {
    size_t end = len < 4096 ? len : 4096;
    if (end > 5 && !strncmp(buf, "<?xml", 5)) {
        const char *close = memchr(buf, '>', end);
        const char *enc = NULL;
        /* "encoding" inside the declaration; buf is not a C string */
        for (const char *p = buf + 5; close && !enc && p + 8 <= close; p++) {
            enc = !memcmp(p, "encoding", 8) ? p : NULL;
        }
        if (enc) {
            size_t k = (size_t)(enc - buf) + 8, n = 0;
            while (k < end &&
                   (buf[k] == ' ' || buf[k] == '=' || buf[k] == '"' || buf[k] == '\'')) {
                k++;
            }
            while (k < end && n + 1 < size && buf[k] != '"' && buf[k] != '\'' &&
                   buf[k] != '?' && buf[k] != ' ') {
                out[n++] = lower_ascii(buf[k++]);
            }
            out[n] = '\0';
            if (n) {
                return true;
            }
        }
    }
    for (size_t i = 0; i + 5 < end; i++) {
        if (buf[i] != '<' || strncasecmp(buf + i + 1, "meta", 4)) {
            continue;
        }
        const char *close = memchr(buf + i, '>', end - i);
        if (!close) {
            break;
        }
        if (charset_after(buf + i, (size_t)(close - (buf + i)), out, size)) {
            return true;
        }
    }
    return false;
}

/* The iconv name of a label, as browsers map labels; NULL for UTF-8. */
static const char *iconv_name(const char *label, char *buf, size_t size) {
    static const char *const utf8[] = {"utf-8",  "utf8",     "unicode-1-1-utf-8",
                                       "utf-16", "utf-16le", "utf-16be"};
    static const char *const w1252[] = {
        "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1",     "l1",
        "us-ascii",   "ascii",     "cp819",      "ibm819",     "windows-1252",
        "cp1252",     "x-cp1252",  "iso-ir-100", "csisolatin1"};
    static const char *const gb[] = {"gb2312",  "gbk",      "x-gbk",  "gb_2312-80",
                                     "chinese", "csgb2312", "gb18030"};
    static const char *const sjis[] = {"shift_jis", "shift-jis",   "sjis",      "x-sjis",
                                       "ms_kanji",  "windows-31j", "csshiftjis"};
    size_t len = strlen(label);
    if (in_list(label, len, LIST(utf8))) {
        return NULL; /* a page that calls itself UTF-16 in a meta is not */
    }
    if (in_list(label, len, LIST(w1252))) {
        return "WINDOWS-1252";
    }
    if (in_list(label, len, LIST(gb))) {
        return "GB18030";
    }
    if (in_list(label, len, LIST(sjis))) {
        return "CP932";
    }
    for (size_t i = 0; i < len && i + 1 < size; i++) {
        buf[i] = label[i] >= 'a' && label[i] <= 'z' ? (char)(label[i] - 32) : label[i];
        buf[i + 1] = '\0';
    }
    return len < size ? buf : "WINDOWS-1252";
}

/* @p buf from @p from to UTF-8; undecodable bytes become U+FFFD.
 * @returns new string of *outlen bytes (a NUL of the page is one of them);
 *          NULL when iconv does not know @p from or no memory. */
static char *to_utf8(const char *buf, size_t len, const char *from, size_t *outlen) {
    iconv_t cd = iconv_open("UTF-8", from);
    struct na_buf out;
    char chunk[4096];
    char *in = (char *)buf;
    size_t left = len;
    if (cd == (iconv_t)-1) {
        return NULL;
    }
    na_buf_init(&out);
    while (left > 0 && !out.oom) {
        char *o = chunk;
        size_t room = sizeof(chunk);
        size_t r = iconv(cd, &in, &left, &o, &room);
        na_buf_append(&out, chunk, sizeof(chunk) - room);
        if (r != (size_t)-1 || errno == E2BIG) {
            continue;
        }
        na_buf_puts(&out, "\xef\xbf\xbd"); /* EILSEQ, or EINVAL at the end */
        in++;
        left--;
        iconv(cd, NULL, NULL, NULL, NULL);
    }
    iconv_close(cd);
    if (!out.data && !out.oom) {
        na_buf_puts(&out, "");
    }
    if (out.oom) {
        na_buf_cleanup(&out);
        return NULL;
    }
    *outlen = out.len;
    return na_buf_steal(&out);
}

/* The page as UTF-8 without control characters (see extract.h). free(). */
static char *page_utf8(const char *buf, size_t len, const char *content_type) {
    char label[48] = "";
    char name[48];
    const char *from = NULL;
    char *conv = NULL, *clean;
    size_t conv_len = 0;
    const unsigned char *u = (const unsigned char *)buf;
    if (len >= 3 && u[0] == 0xef && u[1] == 0xbb && u[2] == 0xbf) {
        buf += 3;
        len -= 3;
    } else if (len >= 2 &&
               ((u[0] == 0xff && u[1] == 0xfe) || (u[0] == 0xfe && u[1] == 0xff))) {
        from = u[0] == 0xff ? "UTF-16LE" : "UTF-16BE";
        buf += 2;
        len -= 2;
    } else if ((content_type && charset_after(content_type, strlen(content_type), label,
                                              sizeof(label))) ||
               prescan(buf, len, label, sizeof(label))) {
        from = iconv_name(label, name, sizeof(name));
    } else if (!na_utf8_valid(buf, len)) {
        from = "WINDOWS-1252";
    }
    if (from && !(conv = to_utf8(buf, len, from, &conv_len))) {
        /* a label iconv does not know: the bytes decide */
        conv =
            na_utf8_valid(buf, len) ? NULL : to_utf8(buf, len, "WINDOWS-1252", &conv_len);
    }
    /* by length: a NUL of the page becomes a space, as in a UTF-8 page */
    clean = conv ? na_utf8_sanitize(conv, conv_len) : na_utf8_sanitize(buf, len);
    free(conv);
    return clean;
}

/* ---------------------------------------------------------------------------
 * the page */

void na_extract_init(struct na_extract *x) {
    memset(x, 0, sizeof(*x));
    x->published_at = NA_TIME_UNKNOWN;
}

void na_extract_cleanup(struct na_extract *x) {
    if (!x) {
        return;
    }
    free(x->text);
    free(x->title);
    authors_free(x->authors, x->authors_cnt);
    free(x->lang);
    na_extract_init(x);
}

/* The MIME type of @p content_type is one we read? */
static bool readable_type(const char *content_type, bool *plain) {
    char type[64];
    size_t n = 0;
    const char *s = content_type;
    *plain = false;
    if (!s) {
        return true;
    }
    while (*s == ' ') {
        s++;
    }
    while (*s && *s != ';' && *s != ' ' && n + 1 < sizeof(type)) {
        type[n++] = lower_ascii(*s++);
    }
    type[n] = '\0';
    if (!n || !strcmp(type, "text/html") || !strcmp(type, "application/xhtml+xml") ||
        !strcmp(type, "application/xml") || !strcmp(type, "text/xml") ||
        !strcmp(type, "application/octet-stream")) {
        return true;
    }
    *plain = !strcmp(type, "text/plain");
    return *plain;
}

/* Words: runs of bytes that are not ASCII whitespace. */
static size_t word_count(const char *s) {
    size_t n = 0;
    bool in = false;
    for (; s && *s; s++) {
        bool space = *s == ' ' || *s == '\n' || *s == '\t';
        n += !space && !in;
        in = !space;
    }
    return n;
}

static void quiet(void *data, xmlErrorPtr error) {
    (void)data;
    (void)error;
}

/* ISO 8601's basic format ("20260305", "20260305T1130Z", as some pubdate
 * metas write it) in the extended one na_date_parse() reads; anything else
 * as it is. @returns @p s or @p iso. */
static const char *basic_date(const char *s, char iso[32]) {
    size_t digits = strspn(s, "0123456789");
    if (digits != 8) {
        return s;
    }
    if (!s[8]) {
        snprintf(iso, 32, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
        return iso;
    }
    size_t tdigits = s[8] == 'T' ? strspn(s + 9, "0123456789") : 0;
    const char *rest = s + 9 + tdigits;
    if ((tdigits != 4 && tdigits != 6) || strlen(rest) > 6) {
        return s;
    }
    snprintf(iso, 32, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s%s", s, s + 4, s + 6, s + 9, s + 11,
             tdigits == 6 ? s + 13 : "00", rest);
    return iso;
}

/* Fill @p x from the metadata @p m and the page's text @p dom (taken). */
static na_err_t finish(struct na_extract *x, struct meta *m, char *dom) {
    char *text = dom;
    x->from = "page";
    if (m->body && word_count(m->body) > 2 * word_count(dom)) {
        free(dom);
        text = m->body;
        m->body = NULL;
        x->from = "json-ld";
    }
    if (text) {
        size_t len = na_utf8_cut(text, strlen(text), NA_MAX_CONTENT_BYTES);
        while (len && (text[len - 1] == ' ' || text[len - 1] == '\n')) {
            len--;
        }
        text[len] = '\0';
    }
    if (!text || !*text) {
        free(text);
        text = NULL;
        x->from = NULL;
    }
    x->text = text;
    x->title = m->title;
    m->title = NULL;
    x->authors = m->authors;
    x->authors_cnt = m->authors_cnt;
    m->authors = NULL;
    m->authors_cnt = 0;
    x->lang = lang_tag(m->lang);
    if (m->date) {
        int64_t t;
        char iso[32];
        if (!na_date_parse(basic_date(m->date, iso), &t)) {
            x->published_at = t;
        }
    }
    return NA_OK;
}

static size_t count_markup(const char *s, size_t len) {
    size_t n = 0;
    for (const char *p = s; (p = memchr(p, '<', len - (size_t)(p - s))); p++) {
        n++;
    }
    return n;
}

na_err_t na_extract_page(const char *buf, size_t len, const char *content_type,
                         struct na_extract *x, char *errstr, size_t errstr_size) {
    htmlParserCtxtPtr pctxt = NULL;
    struct doc d = {NULL, NULL, 0};
    struct meta m;
    struct out o;
    char *page = NULL;
    char dummy[1];
    bool plain = false;
    na_err_t err = NA_OK;
    const int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                        HTML_PARSE_NONET | HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT;

    if (!errstr || !errstr_size) {
        errstr = dummy;
        errstr_size = sizeof(dummy);
    }
    errstr[0] = '\0';
    na_extract_cleanup(x);
    meta_init(&m);
    na_buf_init(&o.buf);
    o.pending = BRK_NONE;
    if (!readable_type(content_type, &plain) || (len >= 5 && !memcmp(buf, "%PDF-", 5))) {
        char *shown = na_utf8_sanitize(
            content_type ? content_type : "application/pdf",
            strcspn(content_type ? content_type : "application/pdf", ";"));
        snprintf(errstr, errstr_size, "not an HTML page (%s)", shown ? shown : "?");
        free(shown);
        return NA_ERR_UNSUPPORTED;
    }
    if (len > NA_MAX_PAGE_BYTES) {
        snprintf(errstr, errstr_size, "page of %zu bytes exceeds %u", len,
                 NA_MAX_PAGE_BYTES);
        return NA_ERR_TOO_LARGE;
    }
    if (!(page = page_utf8(buf ? buf : "", buf ? len : 0, content_type))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    size_t plen = strlen(page);
    if (plain) {
        err = finish(x, &m, na_html_plain_text(page, plen));
        goto out;
    }
    if (count_markup(page, plen) > NA_EXTRACT_MAX_MARKUP || plen > (size_t)INT32_MAX) {
        snprintf(errstr, errstr_size, "page has more than %u tags",
                 NA_EXTRACT_MAX_MARKUP);
        err = NA_ERR_TOO_LARGE;
        goto out;
    }
    if (!(pctxt = htmlNewParserCtxt())) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (pctxt->sax) {
        pctxt->sax->serror = quiet;
    }
    d.doc = htmlCtxtReadMemory(pctxt, page, (int)plen, NULL, "UTF-8", options);
    xmlNode *root = d.doc ? xmlDocGetRootElement(d.doc) : NULL;
    if (!root) {
        snprintf(errstr, errstr_size, "no HTML document");
        err = NA_ERR_PARSE;
        goto out;
    }
    if ((err = collect(&d, root))) {
        goto out;
    }
    for (size_t k = 0; k < d.cnt; k++) {
        classify(&d.els[k]);
    }
    stats(&d);
    read_meta(&d, &m);
    score(&d);
    struct info *top = choose(&d);
    if (top) {
        write_content(&o, top, &m);
    }
    if (o.buf.oom) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    err = finish(x, &m, o.buf.data ? na_html_plain_text(o.buf.data, o.buf.len) : NULL);
out:
    if (err == NA_ERR_NOMEM) {
        snprintf(errstr, errstr_size, "out of memory");
    }
    if (err) {
        na_extract_cleanup(x);
    }
    na_buf_cleanup(&o.buf);
    meta_cleanup(&m);
    free(d.els);
    xmlFreeDoc(d.doc);
    htmlFreeParserCtxt(pctxt);
    free(page);
    return err;
}
