/**
 * @file limits.h
 * @brief Every cap on input-sized allocations, in one place.
 *
 * Anything whose size comes from outside (Kafka, HTTP, files, environment)
 * is checked against one of these before memory is allocated for it.
 */
#ifndef NEWSALERT_LIMITS_H
#define NEWSALERT_LIMITS_H

/** Largest feed document accepted from HTTP or a file (bytes). */
#define NA_MAX_FEED_BYTES (16u * 1024u * 1024u)
/** Most items taken from one feed document; the rest are dropped, counted. */
#define NA_MAX_FEED_ITEMS 5000u
/** Deepest XML/JSON nesting accepted in a feed. */
#define NA_MAX_FEED_DEPTH 64u
/** Largest article/v1 record accepted from Kafka (bytes). */
#define NA_MAX_ARTICLE_BYTES (1024u * 1024u)
/** Longest title kept (bytes); longer ones are cut at a UTF-8 boundary. */
#define NA_MAX_TITLE_BYTES 2048u
/** Longest summary kept (bytes). */
#define NA_MAX_SUMMARY_BYTES (16u * 1024u)
/** Longest plain-text content kept (bytes). */
#define NA_MAX_CONTENT_BYTES (256u * 1024u)
/** Largest article page fetched for its full text (bytes; docs/producer.md). */
#define NA_MAX_PAGE_BYTES (8u * 1024u * 1024u)
/**
 * Longest URL kept (bytes). Also the longest source "id" and "url" accepted
 * (a sources file or record; the id is the key of the topic-mode records).
 */
#define NA_MAX_URL_BYTES 4096u
/** Most authors / categories kept per article. */
#define NA_MAX_AUTHORS 32u
#define NA_MAX_CATEGORIES 64u
/** Largest config, rules or sources file read (bytes). */
#define NA_MAX_CONFIG_BYTES (8u * 1024u * 1024u)
/** A secret read from a file (url_file, secret_file, -X key=@FILE). */
#define NA_MAX_SECRET_BYTES (16u * 1024u)
/** Most sources in one sources file. */
#define NA_MAX_SOURCES 100000u
/**
 * Largest seen-state of one feed read (a file of STATE_DIR/seen/ or a
 * `news.fetchstate` record; bytes). The writer stays far below it (at most
 * NA_SEEN_MAX_IDS_PER_FEED ids of 29 bytes, NA_SEEN_MAX_META_BYTES of
 * JSON), and it is the state topic's max.message.bytes.
 */
#define NA_MAX_STATE_BYTES (4u * 1024u * 1024u)
/** Largest JSON head of one feed's state (id, validators, URLs; bytes). */
#define NA_SEEN_MAX_META_BYTES (512u * 1024u)
/**
 * Item ids of earlier fetches remembered per feed in the seen-state, beyond
 * those of the latest fetch, which are all kept (up to NA_MAX_FEED_ITEMS).
 */
#define NA_SEEN_IDS_PER_FEED 2048u
/** Most item ids of one feed in the seen-state: the latest fetch, the
 *  history, and the tenth of it evicted at once. */
#define NA_SEEN_MAX_IDS_PER_FEED                                                         \
    (NA_MAX_FEED_ITEMS + NA_SEEN_IDS_PER_FEED + NA_SEEN_IDS_PER_FEED / 10u)
/**
 * Most routes in a config (the "routes" array and --webhook). Also the most
 * route outcomes the ledger keeps and reads back for one alert: a record
 * carries every route's, so each route a config may have must fit.
 */
#define NA_MAX_ROUTES 1024u
/** Largest webhook response body kept for diagnostics (bytes). */
#define NA_MAX_WEBHOOK_RESPONSE_BYTES (64u * 1024u)
/** Most bytes of replay output lines held back behind an article whose
 *  alerts are still being delivered; reading pauses above it. */
#define NA_MAX_REPLAY_HELD_BYTES (64u * 1024u * 1024u)

#endif
