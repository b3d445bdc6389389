/**
 * @file feed.h
 * @brief Feed documents (RSS 0.9x/1.0/2.0, Atom 0.3/1.0, JSON Feed 1.0/1.1)
 *        to articles. The format is detected from the content.
 *
 * Each format is one file (feed_rss.c, feed_atom.c, feed_json.c) filling
 * one struct na_feed_format; feed.c holds the table and the detection.
 * Parsing never touches the network or the file system: libxml2 runs with
 * XML_PARSE_NONET and without entity expansion or DTD loading.
 *
 * Detection looks only at the bytes: after a UTF-8 BOM and whitespace, '{'
 * is JSON Feed, '<' (or a UTF-16 BOM) is XML, dispatched on the root
 * element (<rss>, <rdf:RDF>, <feed>). Entity references stay unexpanded:
 * an internal entity with a short plain-text value reads as that value, an
 * undeclared one as the HTML 4 character of that name, anything else
 * (external, nested, markup) as nothing (details in feed.c).
 *
 * Every call is counted in the process-wide metrics (metrics.h):
 * newsalert_feed_documents_total{format,result} (result ok, malformed,
 * too_large, unsupported, nomem; format "unknown" before detection),
 * newsalert_feed_items_total{format},
 * newsalert_feed_items_dropped_total{format} and, of those,
 * newsalert_feed_items_empty_total{format} (items with none of title,
 * link, guid, description and content). The fetcher counts per feed.
 *
 * Links and ids. Item links come out in the canonical form of
 * na_url_canonical(), which drops the fragment, with one exception: when
 * several items of the document link to one page and differ only in the
 * fragment (a live blog: "/live/taiwan#post-2", "#post-3"), an item whose
 * fragment no other of them shares keeps it, so each post has a link and an
 * id of its own. When several items have the very same link but guids of
 * their own, each gets id_by_guid: its id is feed URL + guid (see
 * na_article_set_id()). Items that share link and guid are one article.
 * A document with one item per link, the common case, gets the same links
 * and ids as before fragments were kept.
 *
 * Thread-safe for distinct feeds, once libxml2 is initialised: call
 * xmlInitParser() (or parse one document) before starting threads.
 */
#ifndef NEWSALERT_FEED_H
#define NEWSALERT_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

/** What one feed document yields. */
struct na_feed {
    const char *format;       /**< static name: "rss", "rdf", "atom", "jsonfeed" */
    char *title;              /**< feed title or NULL */
    char *link;               /**< feed home page or NULL */
    char *lang;               /**< feed language or NULL */
    int ttl_min;              /**< RSS <ttl> in minutes, 0 if absent */
    uint32_t skip_hours;      /**< RSS <skipHours>: bit h set = skip hour h (UTC) */
    uint8_t skip_days;        /**< RSS <skipDays>: bit 0 = Sunday .. bit 6 = Saturday */
    struct na_article *items; /**< items_cnt parsed items, in document order */
    size_t items_cnt;
    size_t items_dropped; /**< items skipped: over NA_MAX_FEED_ITEMS or unusable */
    size_t items_empty;   /**< of those, items with none of title, link, guid,
                               description and content */
};

void na_feed_init(struct na_feed *feed);
/** @brief Free all that @p feed owns; NULL-safe. */
void na_feed_cleanup(struct na_feed *feed);

/**
 * @brief Parse one feed document.
 *
 * Items come out with url (absolute, resolved against xml:base, then the
 * feed's link, then @p base_url; canonical as "Links and ids" above) and
 * id_by_guid, guid, title, summary and content as plain
 * text (HTML stripped, entities decoded), authors, categories, lang,
 * published_at and updated_at (published_at falls back to updated_at).
 * The caller sets source_* and fetched_at, then calls na_article_set_id().
 * All strings are valid UTF-8 and within the caps of limits.h.
 *
 * @param base_url URL the document came from (for relative links), or NULL.
 * @param feed initialised with na_feed_init(); filled on success, left clean
 *        on failure.
 * An item with any of title, link, guid, description (summary) or content
 * is an article (its id: na_article_set_id()); an item with none of them
 * is dropped and counted in items_empty and items_dropped, as are items
 * over NA_MAX_FEED_ITEMS (items_dropped only). Control bytes and invalid UTF-8 in
 * a UTF-8 document become spaces and U+FFFD instead of failing it.
 *
 * @returns NA_OK; NA_ERR_TOO_LARGE over NA_MAX_FEED_BYTES (or over
 *          NA_FEED_MAX_XML_MARKUP tags, or NA_FEED_MAX_JSON_VALUES JSON
 *          values); NA_ERR_PARSE (malformed, empty,
 *          nested deeper than NA_MAX_FEED_DEPTH) or NA_ERR_UNSUPPORTED
 *          (unknown root element, JSON that is no JSON Feed), with one line
 *          in @p errstr naming the problem (@p errstr may be NULL).
 */
NA_WUR na_err_t na_feed_parse(const char *buf, size_t len, const char *base_url,
                              struct na_feed *feed, char *errstr, size_t errstr_size);

/**
 * na_feed_parse_ex() flag: items as the document writes them, for
 * comparison with other parsers (tests/conformance). No item is dropped
 * for being empty, and no value is derived from
 * elsewhere: no guid or link from rdf:about, no link from a permalink
 * guid, no published_at from updated_at, no authors or lang from the feed.
 * Not for articles: such items may have no usable id.
 */
#define NA_FEED_LITERAL 0x1u

/**
 * @brief na_feed_parse() with @p flags (0 or NA_FEED_LITERAL); the same
 *        contract otherwise. na_feed_parse() is na_feed_parse_ex() with 0.
 */
NA_WUR na_err_t na_feed_parse_ex(const char *buf, size_t len, const char *base_url,
                                 unsigned flags, struct na_feed *feed, char *errstr,
                                 size_t errstr_size);

#endif
