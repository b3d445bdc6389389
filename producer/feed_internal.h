/**
 * @file feed_internal.h
 * @brief Module-private: the feed format plug-in table and the helpers the
 *        format files share (field setters that enforce the caps of
 *        limits.h, and safe XML text extraction).
 *
 * Adding a format is one new file defining a `struct na_feed_format` and
 * one line in the table of feed.c.
 */
#ifndef NEWSALERT_FEED_INTERNAL_H
#define NEWSALERT_FEED_INTERNAL_H

#include <libxml/tree.h>
#include <stdbool.h>
#include <stddef.h>

#include "feed.h"
#include "newsalert/limits.h"

/** Most bytes of raw text gathered from one XML element before conversion. */
#define NA_FEED_MAX_RAW_TEXT_BYTES (4u * NA_MAX_CONTENT_BYTES)
/**
 * Most markup starts ('<', and '&' of a reference other than a character
 * reference or one of the five predefined entities) in one XML document.
 * libxml2 spends 100-200 bytes per tree node, so 16 MiB of "<a/>" or "&e;"
 * would cost 0.5-1 GB; a real feed of NA_MAX_FEED_ITEMS items stays far
 * below this bound (about 150 MB worst case).
 */
#define NA_FEED_MAX_XML_MARKUP (NA_MAX_FEED_ITEMS * 200u)
/**
 * Most values and member names in one JSON document (each counted by the
 * '{', '[', ',' or ':' before it, outside strings). jansson spends 40-140
 * bytes on each, so 16 MiB of "[]," or "0," would cost 0.3-0.8 GB; the
 * same bound as NA_FEED_MAX_XML_MARKUP, far above a real feed's.
 */
#define NA_FEED_MAX_JSON_VALUES (NA_MAX_FEED_ITEMS * 200u)
/** Longest declared entity value substituted for a reference (bytes). */
#define NA_FEED_MAX_ENTITY_BYTES 64u

#define NA_FEED_NS_ATOM10 "http://www.w3.org/2005/Atom"
#define NA_FEED_NS_ATOM03 "http://purl.org/atom/ns#"
#define NA_FEED_NS_RSS10 "http://purl.org/rss/1.0/"
#define NA_FEED_NS_RSS090 "http://my.netscape.com/rdf/simple/0.9/"
#define NA_FEED_NS_RSS_USERLAND "http://backend.userland.com/rss2"
#define NA_FEED_NS_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define NA_FEED_NS_DC "http://purl.org/dc/elements/1.1/"
#define NA_FEED_NS_DCTERMS "http://purl.org/dc/terms/"
#define NA_FEED_NS_CONTENT "http://purl.org/rss/1.0/modules/content/"
#define NA_FEED_NS_XML "http://www.w3.org/XML/1998/namespace"
/** iTunes podcast namespace; feeds spell it in either case, compare with strcasecmp */
#define NA_FEED_NS_ITUNES "http://www.itunes.com/dtds/podcast-1.0.dtd"

/** State of one na_feed_parse() call, handed to the format callbacks. */
struct na_feed_ctx {
    struct na_feed *feed; /**< the output */
    const char *base_url; /**< the caller's document URL, or NULL */
    unsigned flags;       /**< na_feed_parse_ex() flags */
    size_t items_size;    /**< slots allocated in feed->items */
    char *errstr;         /**< caller's buffer for one line */
    size_t errstr_size;
};

/**
 * One feed format. XML formats set match_xml and parse_xml and are tried
 * in table order on the root element; the JSON format sets parse_json.
 * Callbacks fill ctx->feed and return NA_OK, or an error with a line in
 * ctx->errstr; feed.c cleans the feed on failure.
 */
struct na_feed_format {
    const char *name; /**< static; becomes na_feed.format */
    bool (*match_xml)(const xmlNode *root);
    na_err_t (*parse_xml)(struct na_feed_ctx *ctx, xmlNode *root);
    na_err_t (*parse_json)(struct na_feed_ctx *ctx, const char *buf, size_t len);
};

extern const struct na_feed_format na_feed_format_rss;
extern const struct na_feed_format na_feed_format_rdf;
extern const struct na_feed_format na_feed_format_atom;
extern const struct na_feed_format na_feed_format_jsonfeed;

/* ---- items ---- */

/**
 * @brief Start a new item at the end of ctx->feed->items.
 * @param out set to the new, initialised article; borrowed, valid until
 *        the next na_feed_item_begin(). Set to NULL (with NA_OK) when the
 *        feed already holds NA_MAX_FEED_ITEMS: the item is counted in
 *        items_dropped and the caller skips it.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_feed_item_begin(struct na_feed_ctx *ctx, struct na_article **out);

/**
 * @brief Finish the item last begun: published_at falls back to
 *        updated_at, lang to the feed's; an item with none of url, guid,
 *        title, summary and content is removed and counted in
 *        items_dropped and items_empty.
 */
void na_feed_item_end(struct na_feed_ctx *ctx);

/** @brief Drop the item last begun (malformed), counting it in items_dropped. */
void na_feed_item_abort(struct na_feed_ctx *ctx);

/* ---- field setters: each leaves *dst alone when already set (the first
 * value wins) or when the new value is empty; each returns NA_OK or
 * NA_ERR_NOMEM. Strings come out valid UTF-8, cut to @p max bytes. ---- */

/** @brief Plain text; @p one_line folds line breaks (titles, names). */
NA_WUR na_err_t na_feed_set_plain(char **dst, const char *s, size_t len, size_t max,
                                  bool one_line);
/** @brief HTML converted by na_html_to_text(). */
NA_WUR na_err_t na_feed_set_html(char **dst, const char *s, size_t len, size_t max,
                                 bool one_line);
/**
 * @brief An http(s) link resolved against @p base (see na_url_resolve()),
 *        in canonical form when @p canonical; links longer than
 *        NA_MAX_URL_BYTES are dropped, not cut.
 */
NA_WUR na_err_t na_feed_set_url(char **dst, const char *base, const char *ref,
                                bool canonical);
/** @brief A language tag: letters, digits and '-' ('_' becomes '-'), <= 35 bytes. */
NA_WUR na_err_t na_feed_set_lang(char **dst, const char *s);
/** @brief Sets *dst from na_date_parse() when *dst is NA_TIME_UNKNOWN. */
void na_feed_set_date(int64_t *dst, const char *s);
/** @brief Append a name (author, category) as one-line plain text. */
NA_WUR na_err_t na_feed_add_name(char ***list, size_t *cnt, size_t max, const char *s,
                                 size_t len);

/** @returns true when article/v1 derivations are on (not NA_FEED_LITERAL). */
static inline bool na_feed_derive(const struct na_feed_ctx *ctx) {
    return !(ctx->flags & NA_FEED_LITERAL);
}

/* ---- Atom constructs, also met inside RSS items (feed_atom.c) ---- */

/** @returns true when @p n is an Atom 1.0 or 0.3 element named @p name. */
bool na_feed_atom_is(const xmlNode *n, const char *name);

/**
 * @brief Set *dst from the Atom text construct @p n (type text, html or
 *        xhtml; Atom 0.3 MIME types and mode; out-of-line src= ignored).
 */
NA_WUR na_err_t na_feed_atom_text(char **dst, const xmlNode *n, size_t max,
                                  bool one_line);

/**
 * @brief Append the Atom person construct @p n (<author>, <contributor>)
 *        to @p list: its name, or its email when it has no name.
 */
NA_WUR na_err_t na_feed_atom_person(char ***list, size_t *cnt, const xmlNode *n);

/* ---- XML (libxml2 trees parsed without entity substitution) ---- */

/** @returns true when @p n is an element named @p name in namespace @p ns
 *           (NULL: an element without namespace). */
bool na_feed_xml_is(const xmlNode *n, const char *ns, const char *name);

/** @returns the namespace URI of @p n, or NULL; borrowed. */
const char *na_feed_xml_ns(const xmlNode *n);

/**
 * @brief The text of @p n and its descendants, with entity references
 *        handled as feed.c documents (never expanded from a file, a URL or
 *        another entity), at most NA_FEED_MAX_RAW_TEXT_BYTES.
 * @returns new string; free(). NULL on no memory.
 */
char *na_feed_xml_text(const xmlNode *n);

/**
 * @brief The children of @p n as HTML source for na_html_to_text():
 *        elements become bare tags; text is passed through when
 *        @p text_is_html (escaped HTML inside RSS <description>, Atom
 *        type="html"), escaped otherwise (Atom type="xhtml").
 * @returns new string; free(). NULL on no memory.
 */
char *na_feed_xml_markup(const xmlNode *n, bool text_is_html);

/**
 * @brief Attribute @p name in namespace @p ns (NULL: none) of @p n, with
 *        the same entity handling as na_feed_xml_text().
 * @returns new string, or NULL when absent or on no memory; free().
 */
char *na_feed_xml_attr(const xmlNode *n, const char *ns, const char *name);

/**
 * @brief The base URL in effect inside @p n: its xml:base resolved against
 *        @p inherited (or, when that is NULL, @p fallback).
 * @returns new string, or NULL when there is none; free().
 */
char *na_feed_xml_base(const xmlNode *n, const char *inherited, const char *fallback);

/** @brief Feed-level fields common to XML formats: lang from xml:lang. */
NA_WUR na_err_t na_feed_xml_lang(const xmlNode *n, char **dst);

#endif
