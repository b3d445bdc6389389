/**
 * @file timeutil.h
 * @brief Clocks and RFC 3339 times. Times are Unix seconds (int64_t) unless
 *        the name says _ms.
 */
#ifndef NEWSALERT_TIMEUTIL_H
#define NEWSALERT_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

/** A time that is not known (published_at of an undated item). */
#define NA_TIME_UNKNOWN INT64_MIN

#define NA_RFC3339_LEN 21    /* "2026-01-06T08:00:00Z" + NUL */
#define NA_RFC3339_MS_LEN 25 /* "2026-01-06T08:00:00.250Z" + NUL */

/** @returns wall-clock time in milliseconds since the epoch. */
int64_t na_now_ms(void);

/** @returns monotonic time in milliseconds (for timeouts and intervals). */
int64_t na_mono_ms(void);

/** @returns monotonic time in microseconds (for short measurements). */
int64_t na_mono_us(void);

/** @brief Format @p t as "YYYY-MM-DDTHH:MM:SSZ" into @p buf. */
void na_time_format_rfc3339(int64_t t, char buf[NA_RFC3339_LEN]);

/** @brief Format @p ms (milliseconds since the epoch) as
 *         "YYYY-MM-DDTHH:MM:SS.mmmZ", or without ".mmm" when it is 0. */
void na_time_format_rfc3339_ms(int64_t ms, char buf[NA_RFC3339_MS_LEN]);

/**
 * @brief Parse an RFC 3339 date-time ("2026-01-06T08:00:00Z",
 *        "2026-01-06T16:00:00.123+08:00"); a bare date means midnight UTC.
 *        The day must exist in its month (no 2026-02-30, no 2025-02-29).
 * @returns NA_OK and sets *t, or NA_ERR_INVALID.
 */
NA_WUR na_err_t na_time_parse_rfc3339(const char *s, int64_t *t);

/**
 * @brief na_time_parse_rfc3339() in milliseconds: the fraction of a second
 *        is kept to the millisecond (further digits cut), where
 *        na_time_parse_rfc3339() drops it. For bounds compared with
 *        millisecond timestamps (replay's --from/--to).
 */
NA_WUR na_err_t na_time_parse_rfc3339_ms(const char *s, int64_t *ms);

/**
 * @brief Parse a duration: a number with unit ms, s, m, h or d ("90s", "48h").
 * @returns NA_OK and sets *ms, or NA_ERR_INVALID.
 */
NA_WUR na_err_t na_duration_parse_ms(const char *s, int64_t *ms);

/** @brief Sleep for @p ms milliseconds (restarts after signals are not wanted: returns
 * early). */
void na_sleep_ms(int64_t ms);

#endif
