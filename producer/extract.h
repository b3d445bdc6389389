/**
 * @file extract.h
 * @brief An article page (HTML) to its story as plain text, with the
 *        byline, published time, language and headline its metadata gives.
 *
 * What it decides. A news page holds one story among navigation, sidebars,
 * related links, ads, share buttons, comment threads, newsletter boxes and
 * footers. The extractor parses the page with libxml2's HTML parser
 * (recovering, no network, no DTD) and keeps the story, readability-style:
 *
 * 1. Removed before anything is scored: scripts, styles, forms, frames,
 *    embedded media, <nav>, <aside>, <header>, <footer>, <figure> (captions
 *    are not the story), hidden elements (hidden, aria-hidden="true",
 *    display:none), ARIA landmarks other than the main one, and elements
 *    whose class or id words say what they are (comments, sidebar, related,
 *    share, promo, ad, newsletter, subscribe, paywall, cookie, byline, ...)
 *    unless they also say article, story, body, content or main. <article>,
 *    <main> and <body> are never removed by their class.
 * 2. Scored: every run of text of at least 25 characters in a block (a
 *    <p>, a <div> holding text beside or instead of block children, a table
 *    cell) gives its block 1 point, 1 per comma and 1 per 100 characters
 *    (at most 3); the block's ancestors get that score divided by 1, 2, 6,
 *    9 and 12, on top of a base by element (+5 <div>, <article>, <main>;
 *    -3 lists and forms; -5 headings) and +-25 by class and id words. Each
 *    candidate's score is scaled by (1 - its link density: the share of its
 *    text inside links). Class words count in full only for a candidate of
 *    500 characters or more ("Text" on a byline's class is typography).
 * 3. Chosen: the best candidate; its ancestor instead when at least three
 *    candidates scoring within 75 % of it sit below that ancestor (a story
 *    cut into several <div>s); then its siblings that score at least a
 *    fifth of it (at least 10), or that are paragraphs of prose (longer than
 *    80 characters with a link density under 0.25, or shorter ones without
 *    links ending a sentence), and headings just before an included sibling.
 *    A candidate that is one post of a series (three or more siblings of
 *    one tag and class with prose and few links: a live blog's posts, a
 *    story cut in blocks) gives way to the series' parent. Siblings whose
 *    heading is a link (another story's teaser) are never taken.
 * 4. Cleaned while written out: <h1> (the headline) goes; lists, tables and
 *    <div>s with fewer than 10 commas go when their link density passes 0.2
 *    (0.5 for those whose class says content), when images outnumber their
 *    paragraphs two to one, or when they hold more inputs than a third of
 *    their paragraphs; a paragraph that is mostly one link ("Read more:
 *    ...") goes, as do blocks whose whole text is a known label
 *    ("Advertisement", "Continue reading"), the headline again (a block, or
 *    a <b> or <font>, whose text is the title), or a byline (a short line
 *    that is, or starts "By", "Par", "Von" ... before, an author's name).
 * 5. Structured data wins when the page body has too little: when the text
 *    so found has fewer than half the words of the JSON-LD articleBody of
 *    the page's NewsArticle (or Article, BlogPosting, LiveBlogPosting; in
 *    the top object, an array, or an @graph), the articleBody is the text
 *    (a LiveBlogPosting's liveBlogUpdate entries, headline and body each,
 *    when it has no articleBody). So does a script-rendered page whose HTML
 *    holds only the JSON-LD.
 *
 * The text keeps paragraph breaks: one blank line between blocks, a line
 * break for <br> and list items, runs of whitespace collapsed, as
 * na_html_to_text() lays out feed HTML. It is valid UTF-8, at most
 * NA_MAX_CONTENT_BYTES.
 *
 * Metadata, each from the first source that has it:
 * - authors: JSON-LD author (a name, a person or organisation, or a list),
 *   then <meta name="author">, article:author (unless a URL), "byl"
 *   ("By ..."), DC.creator, parsely-author, then a byline in the page
 *   (rel="author", itemprop="author", a class byline or author), "By" and
 *   "and" taken apart;
 * - published_at: JSON-LD datePublished, article:published_time, meta
 *   itemprop="datePublished", pubdate, publishdate, date, DC.date(.issued),
 *   parsely-pub-date, then <time> marked datePublished or pubdate (dates
 *   read by na_date_parse());
 * - lang: <html lang> (or xml:lang), Content-Language meta, JSON-LD
 *   inLanguage, og:locale ("en_GB" becomes "en-GB");
 * - title: JSON-LD headline, og:title, twitter:title, the first <h1>,
 *   <title>.
 *
 * Encoding: a byte order mark, else the charset of @p content_type (the
 * HTTP header), else a <meta charset> or http-equiv Content-Type in the
 * first 4 KiB (or the XML declaration), else UTF-8 when the bytes are valid
 * UTF-8 and windows-1252 otherwise. ISO-8859-1 and US-ASCII labels mean
 * windows-1252, as browsers read them. The page is converted to UTF-8
 * (iconv; bytes that do not convert become U+FFFD, NUL and other control
 * characters but newline and tab a space, whatever the encoding) before
 * parsing, so an unknown label falls back to that guess instead of failing.
 *
 * Limits: a page of more than NA_MAX_PAGE_BYTES, or with more than
 * NA_EXTRACT_MAX_MARKUP tags, is refused before parsing; every walk of the
 * tree is iterative (no recursion on nesting) and libxml2 builds at most
 * 256 levels (what is nested deeper is lost, not parsed); a JSON-LD script
 * is read up to NA_EXTRACT_MAX_JSONLD_BYTES. Nothing is fetched: links,
 * images, frames and external DTDs are never followed.
 *
 * Quality (docs/extract.md): word precision and recall over the pages of
 * tests/data/pages/, checked by test_extract (at least 0.95 overall).
 *
 * Thread-safe for distinct pages once libxml2 is initialised
 * (xmlInitParser()).
 */
#ifndef NEWSALERT_EXTRACT_H
#define NEWSALERT_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

/** Most markup starts ('<') in a page parsed; a large news page has ~10,000. */
#define NA_EXTRACT_MAX_MARKUP 250000u
/** Largest JSON-LD script read (bytes). */
#define NA_EXTRACT_MAX_JSONLD_BYTES (1024u * 1024u)

/** What one page yields; every string owned (heap, valid UTF-8) or NULL. */
struct na_extract {
    char *text;           /**< the story, or NULL when the page has none */
    char *title;          /**< headline from the metadata, or NULL */
    char **authors;       /**< byline names, at most NA_MAX_AUTHORS */
    size_t authors_cnt;   /**< */
    int64_t published_at; /**< Unix s, or NA_TIME_UNKNOWN */
    char *lang;           /**< language tag, or NULL */
    const char *from;     /**< static: "page" or "json-ld" (where text came
                               from), NULL without text */
};

/** @brief Empty @p x (unknown time). */
void na_extract_init(struct na_extract *x);
/** @brief Free all that @p x owns and empty it; NULL-safe. */
void na_extract_cleanup(struct na_extract *x);

/**
 * @brief Extract the story of one HTML page.
 * @param buf the page as fetched (any encoding; see above), @p len bytes
 *        (need not end with a NUL: nothing past them is read).
 * @param content_type the response's Content-Type, or NULL.
 * @param x initialised; filled on success (x->text NULL when no story was
 *        found: a page of links, an image gallery), left empty on failure.
 * @returns NA_OK; NA_ERR_UNSUPPORTED when @p content_type names something
 *          other than HTML, XHTML or plain text (a PDF, an image);
 *          NA_ERR_TOO_LARGE over NA_MAX_PAGE_BYTES or NA_EXTRACT_MAX_MARKUP;
 *          NA_ERR_PARSE when there is no document; NA_ERR_NOMEM. With a
 *          line in @p errstr (which may be NULL).
 */
NA_WUR na_err_t na_extract_page(const char *buf, size_t len, const char *content_type,
                                struct na_extract *x, char *errstr, size_t errstr_size);

#endif
