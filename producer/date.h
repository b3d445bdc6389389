/**
 * @file date.h
 * @brief Dates as feeds write them, to Unix seconds.
 */
#ifndef NEWSALERT_DATE_H
#define NEWSALERT_DATE_H

#include <stdint.h>

#include "newsalert/err.h"

/**
 * @brief Parse a feed date.
 *
 * Accepted:
 * - RFC 3339 / ISO 8601 date-times and dates ("2026-01-06T08:00:00Z",
 *   "2026-01-06T16:00:00.5+08:00", "2026-01-06 08:00:00", "2026-01-06"),
 *   via na_time_parse_rfc3339(); a time without zone is UTC. Also with
 *   slashes ("2026/01/06 08:00") and with a Z after an offset
 *   ("...+00:00Z": the offset counts). A zone name of the list below after
 *   the time counts ("2026-01-06 03:00:00 EST"), and must agree with an
 *   offset written too; one to five capitals that name no zone we know
 *   ("... XYZ"), a military letter other than Z, or a zone with an offset
 *   glued to it ("GMT+0800") refuse the date instead of reading it as UTC.
 *   AM or PM (also "a.m.", "p.m.", any case) after the time counts, with an
 *   hour of 1 to 12. A date followed by a time the reader cannot take
 *   ("2026-01-06 8:00:00", "2026-01-06 at 08:00") is refused, not read as
 *   midnight.
 * - RFC 822 / 1123 / 2822 dates, with or without the day name, with 2- or
 *   4-digit years (00-49 = 20xx, 50-99 = 19xx), with or without seconds:
 *   "Tue, 06 Jan 2026 08:00:00 +0800", "6 Jan 26 08:00 GMT".
 * - Zones: +hhmm, +hh:mm, +hh; GMT, UT, UTC, Z; the US zones EST EDT CST
 *   CDT MST MDT PST PDT (and AKST AKDT HST); a few others common in news
 *   feeds (CET CEST EET EEST WET WEST BST MSK IST JST KST HKT SGT AWST
 *   ACST AEST AEDT NZST NZDT); "GMT+0800". Military letters other than Z
 *   are read as UTC, as RFC 5322 section 4.3 says, because RFC 822 gave
 *   them with the wrong sign (RFC 1123 section 5.2.14). No zone, or an
 *   unknown zone name after the time, means UTC.
 * - Common breakage: full or dotted month and day names ("January",
 *   "Sept."), dashes ("06-Jan-2026"), asctime order ("Tue Jan  6
 *   08:00:00 2026"), extra spaces and commas, AM/PM, ordinal suffixes
 *   ("6th"), and trailing words or a "(comment)" once the date is complete.
 *
 * Day names are ignored (a wrong one does not reject the date); the day of
 * the month must exist in every form (no 31 April, no 2026-02-30, no 29
 * February outside leap years).
 *
 * @returns NA_OK and sets *t, or NA_ERR_INVALID (*t untouched).
 */
NA_WUR na_err_t na_date_parse(const char *s, int64_t *t);

#endif
