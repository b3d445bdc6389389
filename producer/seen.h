/**
 * @file seen.h
 * @brief The producer's seen-state: per feed, the HTTP validators (ETag,
 *        Last-Modified), what the fetcher learnt about the feed (the URL it
 *        was learnt from, moved URL, retirement, schedule, RSS ttl and skip
 *        hours/days) and, per recently produced article id, its content
 *        fingerprint and revision.
 *
 * Invariants:
 * - An id is added only after Kafka confirmed its delivery, so a crash may
 *   re-publish but never loses an article.
 * - A feed never forgets an id its latest fetch carried (see
 *   na_seen_fetch_begin()); of the ids of earlier fetches it keeps the
 *   NA_SEEN_IDS_PER_FEED most recently seen. A feed thus holds at most
 *   NA_SEEN_MAX_IDS_PER_FEED ids. A feed that left the sources is forgotten
 *   after a grace period (na_seen_prune()), so the number of feeds is
 *   bounded too.
 * - Whatever a save writes, a load reads back: every cap of the reader is
 *   above what the writer can produce, and the writer enforces it.
 *
 * Storage (file mode, STATE_DIR/seen/; docs/producer.md, "Seen-state"):
 * - One file per feed, named by the first 128 bits of the SHA-256 of the
 *   feed id in hex (32 digits), written only when that feed changed (its
 *   first file with its first change that matters), atomically: temporary
 *   file, fsync, rename, and one fsync of the folder per save, so kill -9
 *   leaves the old or the new file. Layout:
 *     "NASEEN3\n"
 *     {"feed":"<id>","ids":N,"latest":L,"state":{...}}\n   (compact JSON)
 *     N entries of 29 bytes, least recently seen first; the last L are the
 *       ids of the latest fetch:
 *       16 bytes  article id key: its 32 bytes with the halves XORed when the
 *                 id is 64 hex digits (a SHA-256, as article ids are), else
 *                 the first 128 bits of its SHA-256
 *        8 bytes  fingerprint: its 16 hex digits as bytes (else the first
 *                 64 bits of its SHA-256), zero when there is none
 *        4 bytes  revision, little-endian
 *        1 byte   0: no fingerprint (no text), 1: fingerprint, 2: unknown
 *                 (stored by an older version)
 *     8 bytes: the first 64 bits of the SHA-256 of everything before.
 *   "state" holds the feed's strings (etag, last_modified, source_url, url,
 *   moved_from, retired) and integers (ttl, skip_hours, skip_days).
 * - The schedule values (next_at, active_at), which change at every poll,
 *   go to one small file, "schedule": "NASCHD1\n", a 32-bit little-endian
 *   count, per feed 16 bytes of file name and two 64-bit little-endian
 *   values (INT64_MIN: none), and the same 8-byte checksum. It is written
 *   when schedules changed, at most every soft delay; losing it only moves
 *   first polls.
 * - A corrupt feed file is logged (event=state_file_corrupt), counted in
 *   newsalert_producer_state_corrupt_total, renamed to "<name>.corrupt" and
 *   its feed starts empty; the other feeds load. A corrupt schedule is
 *   handled alike (every feed starts without schedule).
 * - At load, temporary files of saves that were killed ("*.tmp.<pid>")
 *   are removed, and a STATE_DIR/seen.json of an older version (formats
 *   1 to 3) is migrated into seen/, then renamed to seen.json.migrated.
 * - The folder is locked (flock on seen/lock): one process at a time.
 *
 * Topic mode keeps the state in memory and publishes one feed at a time
 * (na_seen_feed_dump(): the same encoding as a feed file, schedule values
 * included in "state"); na_seen_feed_load() also reads the JSON records of
 * older versions.
 *
 * Dedup (see docs/producer.md): an article is NEW unless its id is known
 * (SAME, or EDITED when its fingerprint changed or appeared) or its
 * fingerprint is known under another id of the same feed (DUPLICATE: the
 * GUID or link changed, the text did not).
 *
 * Single-threaded: the producer's main thread owns it.
 */
#ifndef NEWSALERT_SEEN_H
#define NEWSALERT_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "newsalert/article.h"
#include "newsalert/err.h"

/** Hex digits of a content fingerprint (64 bits of SHA-256). */
#define NA_SEEN_FP_LEN 16
/** Shortest normalised title + text that gets a fingerprint (bytes). */
#define NA_SEEN_FP_MIN_TEXT 24
/** Most feeds kept in one seen-state (active ones are never dropped). */
#define NA_SEEN_MAX_FEEDS 200000u
/** Longest feed id with a state, and longest string value kept (bytes). */
#define NA_SEEN_MAX_ID_BYTES 8192u
#define NA_SEEN_MAX_VALUE_BYTES 8192u

typedef struct na_seen_s na_seen_t;

enum na_seen_verdict {
    NA_SEEN_NEW = 0,   /**< never produced: produce it */
    NA_SEEN_SAME,      /**< id known with this fingerprint (or none now): skip */
    NA_SEEN_EDITED,    /**< id known, fingerprint changed or appeared: an update */
    NA_SEEN_DUPLICATE, /**< another id of this feed had this fingerprint: skip */
    NA_SEEN_FAILED,    /**< no memory to make the keys of a non-hex id or
                            fingerprint: not known either way, try again */
};

/**
 * @brief Open the state kept under @p state_dir: create and lock
 *        state_dir/seen/, remove temporary files of killed saves, load every
 *        feed file and the schedule, migrate a seen.json of an older version.
 * @param state_dir the producer's STATE_DIR (it must exist), or NULL for a
 *        state kept only in memory (saves are then no-ops; the Kafka-backed
 *        mode publishes per feed instead).
 * @param seenp set to new state; destroy with na_seen_destroy().
 * @returns NA_OK (corrupt files are reported, set aside and skipped, never
 *          an error), NA_ERR_IO (the folder cannot be made, read or locked:
 *          another process uses it; or a migration could not be written),
 *          NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_seen_load(const char *state_dir, na_seen_t **seenp, char *errstr,
                             size_t errstr_size);

/** @brief Release the state and its lock (nothing is saved); NULL-safe. */
void na_seen_destroy(na_seen_t *seen);

/**
 * @returns 2 when feed files wait to be written or removed, 1 when only
 *          schedules changed, 0 else.
 */
int na_seen_dirty(const na_seen_t *seen);

/** @brief Write every change now (feed files, removals, schedule). */
NA_WUR na_err_t na_seen_save(na_seen_t *seen, char *errstr, size_t errstr_size);

/**
 * @brief Write the changes that are due: feeds changed at least
 *        @p delay_ms ago, oldest change first, and the schedule once it
 *        changed @p sched_delay_ms ago, stopping after @p budget_ms (0: no
 *        limit) so that the main loop is never held long. A feed whose
 *        write failed is tried again @p delay_ms later.
 * @returns NA_OK or the first error (errstr names the file).
 */
NA_WUR na_err_t na_seen_save_due(na_seen_t *seen, int64_t delay_ms,
                                 int64_t sched_delay_ms, int64_t budget_ms, char *errstr,
                                 size_t errstr_size);

/**
 * @brief Content fingerprint of an article: SHA-256 over the title and the
 *        content (or summary), lower-cased with whitespace runs collapsed.
 * @param fp receives NA_SEEN_FP_LEN hex digits and a NUL.
 * @returns NA_OK, with fp empty when the article has no content or summary
 *          or when the text is shorter than NA_SEEN_FP_MIN_TEXT (too little
 *          to tell two articles apart); NA_ERR_NOMEM (fp empty).
 */
NA_WUR na_err_t na_seen_fingerprint(const struct na_article *a,
                                    char fp[NA_SEEN_FP_LEN + 1]);

/**
 * @brief Classify an article of @p feed_id.
 * @param fp fingerprint or NULL/"" when there is none.
 * @param rev set to the revision to publish: 1 for NEW, stored + 1 for EDITED,
 *        the stored one otherwise.
 * @returns the verdict; NA_SEEN_FAILED on no memory (neither produce nor
 *          skip it for good: the document is read again).
 * @remark Not const: may rebuild the feed's fingerprint index.
 */
enum na_seen_verdict na_seen_check(na_seen_t *seen, const char *feed_id,
                                   const char *article_id, const char *fp, int *rev);

/**
 * @brief A new document of @p feed_id is about to be checked: the ids
 *        na_seen_touch()ed or na_seen_put() from now until the next call are
 *        those of its latest fetch, and eviction keeps every one of them.
 */
void na_seen_fetch_begin(na_seen_t *seen, const char *feed_id);

/**
 * @brief The latest fetch of @p feed_id carries @p article_id: call it for
 *        every item of the document before na_seen_put() of any, so that no
 *        put evicts an id still carried. Unknown ids are ignored; an id of
 *        unknown fingerprint adopts @p fp (NULL or "": none) without an edit.
 * @returns NA_OK, or NA_ERR_NOMEM when the key of a non-hex id or
 *          fingerprint could not be made (the id may not be kept: fail the
 *          document).
 */
NA_WUR na_err_t na_seen_touch(na_seen_t *seen, const char *feed_id,
                              const char *article_id, const char *fp);

/**
 * @brief Is @p article_id remembered for @p feed_id? Into *has.
 * @returns NA_OK, or NA_ERR_NOMEM (the key of a non-hex id; *has false).
 */
NA_WUR na_err_t na_seen_has(const na_seen_t *seen, const char *feed_id,
                            const char *article_id, bool *has);

/**
 * @brief Remember @p article_id (with fingerprint @p fp or NULL, revision
 *        @p rev) for @p feed_id as an id of its latest fetch; past the cap,
 *        evict the ids of earlier fetches least recently seen.
 */
NA_WUR na_err_t na_seen_put(na_seen_t *seen, const char *feed_id, const char *article_id,
                            const char *fp, int rev);

/** @brief na_seen_put() without fingerprint, revision 1. */
NA_WUR na_err_t na_seen_add(na_seen_t *seen, const char *feed_id, const char *article_id);

/** @returns borrowed validator ("etag" or "last_modified") or NULL; valid until changed.
 */
const char *na_seen_validator(const na_seen_t *seen, const char *feed_id,
                              const char *name);

/**
 * @brief Set both validators of a feed (NULL clears one). A validator longer
 *        than NA_SEEN_MAX_VALUE_BYTES is not kept (the next fetch is then
 *        unconditional).
 */
NA_WUR na_err_t na_seen_set_validators(na_seen_t *seen, const char *feed_id,
                                       const char *etag, const char *last_modified);

/**
 * @brief The configured URL of @p feed_id is @p url (at start, on a reload,
 *        on a source record). When the state was learnt from another URL,
 *        forget what belongs to that URL: validators, where it moved, RSS
 *        ttl and skip hours/days, the next poll time. The ids stay, so the
 *        same items under the new URL are not new. State without a recorded
 *        URL (older versions) is reset only when its move names another.
 * @param reset set to true when state was forgotten.
 */
NA_WUR na_err_t na_seen_bind_url(na_seen_t *seen, const char *feed_id, const char *url,
                                 bool *reset);

/**
 * @returns borrowed string member @p key ("url", "moved_from", "retired",
 *          "source_url") of the feed, or NULL; valid until changed.
 */
const char *na_seen_get_str(const na_seen_t *seen, const char *feed_id, const char *key);

/**
 * @brief Set (NULL: remove) a string member ("url", "moved_from", "retired").
 * @returns NA_OK, NA_ERR_INVALID (not a string member), NA_ERR_TOO_LARGE
 *          (longer than NA_SEEN_MAX_VALUE_BYTES, or a feed id longer than
 *          NA_SEEN_MAX_ID_BYTES), NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_seen_set_str(na_seen_t *seen, const char *feed_id, const char *key,
                                const char *value);

/** @returns integer member @p key ("next_at", "ttl", ...) or @p def when absent. */
int64_t na_seen_get_int(const na_seen_t *seen, const char *feed_id, const char *key,
                        int64_t def);

/**
 * @brief Set an integer member: "ttl", "skip_hours", "skip_days" (kept in
 *        the feed's file), "next_at" (unix ms) or "active_at" (unix s),
 *        schedule values kept in the schedule file (dirty 1).
 * @returns NA_OK, NA_ERR_INVALID (not an integer member), NA_ERR_TOO_LARGE,
 *          NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_seen_set_int(na_seen_t *seen, const char *feed_id, const char *key,
                                int64_t value);

/** @returns the number of ids remembered for @p feed_id. */
size_t na_seen_count(const na_seen_t *seen, const char *feed_id);

/** @returns the number of feeds in the state. */
size_t na_seen_feeds(const na_seen_t *seen);

/**
 * @brief One feed's state, schedule included, in the feed-file encoding
 *        (the value of a `news.fetchstate` record).
 * @param lenp set to its length in bytes.
 * @returns new buffer; free(). NULL when the feed has no state or on no
 *          memory.
 */
char *na_seen_feed_dump(const na_seen_t *seen, const char *feed_id, size_t *lenp);

/**
 * @brief Replace one feed's state by @p buf: what na_seen_feed_dump() wrote,
 *        or the JSON object of an older version.
 * @returns NA_OK, NA_ERR_PARSE (errstr; also a state of another feed),
 *          NA_ERR_TOO_LARGE or NA_ERR_NOMEM; the old state stays on failure.
 */
NA_WUR na_err_t na_seen_feed_load(na_seen_t *seen, const char *feed_id, const char *buf,
                                  size_t len, char *errstr, size_t errstr_size);

/** @brief Forget one feed (and remove its file at the next save). */
void na_seen_feed_drop(na_seen_t *seen, const char *feed_id);

/** @returns non-zero when @p feed_id is still in the sources. */
typedef int(na_seen_active_cb)(const char *feed_id, void *ctx);

/**
 * @brief Bound the number of feeds: stamp active feeds with @p now_s; drop
 *        the others once they have been inactive for more than @p grace_s
 *        (feeds without a stamp get one now and so a full grace period),
 *        and beyond NA_SEEN_MAX_FEEDS drop the inactive ones at once.
 * @returns the number of feeds dropped.
 */
size_t na_seen_prune(na_seen_t *seen, na_seen_active_cb *active, void *ctx, int64_t now_s,
                     int64_t grace_s);

#endif
