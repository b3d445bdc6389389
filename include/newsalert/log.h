/**
 * @file log.h
 * @brief One line per event on stderr, logfmt (default) or JSON.
 *
 * A line is `ts=... level=... comp=... event=... <kv...>`; the caller's
 * format supplies the key=value pairs. Untrusted strings (titles, URLs,
 * error texts from the network) go through na_log_q(), which quotes and
 * escapes them so that one event always stays one parsable line.
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef NEWSALERT_LOG_H
#define NEWSALERT_LOG_H

enum na_log_level {
    NA_LOG_ERROR = 0,
    NA_LOG_WARN,
    NA_LOG_INFO,
    NA_LOG_DEBUG,
};

enum na_log_format {
    NA_LOG_FORMAT_LOGFMT = 0,
    NA_LOG_FORMAT_JSON,
};

/** @brief Set the most verbose level written (default NA_LOG_INFO). */
void na_log_set_level(enum na_log_level level);

/** @brief Parse "error|warn|info|debug"; @returns 0 on success, -1 if unknown. */
int na_log_level_parse(const char *name, enum na_log_level *level);

/** @brief Choose logfmt (default) or JSON lines. */
void na_log_set_format(enum na_log_format format);

/** @returns non-zero when @p level would be written. */
int na_log_enabled(enum na_log_level level);

/**
 * @brief Write one event.
 * @param comp component ("producer", "fetch", "deliver", ...)
 * @param event short snake_case event name ("feed_error")
 * @param fmt printf format of logfmt pairs (`"feed=%s status=%ld"`), or NULL.
 *        In JSON mode the pairs are parsed back into object members.
 */
void na_log(enum na_log_level level, const char *comp, const char *event, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));

/**
 * @brief Quote @p s for a logfmt value: `"..."` with `\"`, `\\`, `\n` and
 *        other control bytes escaped; NULL becomes `""`.
 * @returns borrowed, valid until the same thread has called na_log_q() eight
 *          more times (a small per-thread ring); long values are cut at 400
 *          bytes with "...".
 */
const char *na_log_q(const char *s);

#endif
