/**
 * @file url.h
 * @brief Link resolution and canonical URLs for article ids, on libcurl's
 *        URL API (curl_url), so that links are parsed exactly as the
 *        fetcher will parse them.
 *
 * Only http and https URLs come out of these functions: an item link to
 * javascript:, data:, mailto:, file: or anything else is no link at all.
 */
#ifndef NEWSALERT_URL_H
#define NEWSALERT_URL_H

/**
 * @brief Resolve @p ref against @p base (RFC 3986 section 5).
 *
 * Leading and trailing whitespace of @p ref is ignored, tabs and line
 * breaks inside it are removed (as browsers do), and spaces, control bytes
 * and non-ASCII bytes after the host are percent-encoded. An absolute
 * @p ref does not need a base.
 *
 * @param base absolute URL, or NULL.
 * @returns new string; free(). NULL when @p ref is empty, cannot be
 *          resolved (relative without a usable base, malformed) or is not
 *          http/https.
 */
char *na_url_resolve(const char *base, const char *ref);

/**
 * @brief The canonical form of an absolute http(s) URL, the input of an
 *        article id: scheme and host in lower case, default port, user
 *        name and password and fragment dropped, dot segments removed,
 *        percent escapes in upper case, and the tracking parameters utm_*,
 *        fbclid, gclid, mc_cid, mc_eid and ref_src (names compared without
 *        case) dropped from the query; the other parameters stay, in order.
 *        An empty query disappears with its '?'.
 * @returns new string; free(). NULL when @p url is not an absolute
 *          http(s) URL or on no memory.
 */
char *na_url_canonical(const char *url);

/** na_url_canonical_ex() flag: keep the fragment (an empty one goes). */
#define NA_URL_KEEP_FRAGMENT 0x1u

/**
 * @brief na_url_canonical() with @p flags (0 or NA_URL_KEEP_FRAGMENT); the
 *        same contract otherwise. na_url_canonical() is this with 0.
 */
char *na_url_canonical_ex(const char *url, unsigned flags);

/**
 * @brief The origin of an absolute http(s) URL: "scheme://host:port", scheme
 *        and host in lower case, the port always written (80 and 443 by
 *        default). Two URLs are of one origin when these strings are equal.
 * @returns new string; free(). NULL when @p url is not an absolute http(s)
 *          URL or on no memory.
 */
char *na_url_origin(const char *url);

#endif
