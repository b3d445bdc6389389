/**
 * @file robots.h
 * @brief robots.txt (RFC 9309): the rules one user agent must follow on one
 *        site, and whether a path may be fetched.
 *
 * The producer reads a site's robots.txt before it fetches an article page
 * there (docs/producer.md, "Full text"); feeds themselves are fetched
 * because their owner published them for that, as every feed reader does.
 *
 * Parsing (RFC 9309 section 2): lines "user-agent:", "allow:",
 * "disallow:" (field names without case, whitespace before them allowed,
 * '#' starts a comment, other lines and fields are ignored; a UTF-8 byte
 * order mark at the start is skipped). A group is a run of
 * user-agent lines and the rules after them. The rules for @p agent are those of every
 * group naming it (its product token, compared without case: "newsalert" matches
 * "Newsalert/1.0"), else those of every group for "*", else none. At most
 * NA_ROBOTS_MAX_BYTES are read; at most NA_ROBOTS_MAX_RULES rules kept.
 *
 * Matching: the rule whose path matches the most characters of the URL's
 * path and query wins, "allow" on a tie; no rule: allowed. A pattern
 * matches from the start of the path; '*' matches any run of characters
 * and a trailing '$' the end. Percent escapes are compared as written,
 * except that "%7E"-style escapes of unreserved characters match the
 * character, and that bytes a URL carries only percent-encoded (non-ASCII,
 * spaces, controls) match their escapes: "Disallow: /café" forbids
 * "/caf%C3%A9" (RFC 9309 section 2.2.2). "/robots.txt" is always
 * allowed. An empty "disallow:" allows everything. A rule costs time
 * linear in its pattern and the path, however its '*' are placed.
 *
 * Not thread-safe per object; distinct objects are independent.
 */
#ifndef NEWSALERT_ROBOTS_H
#define NEWSALERT_ROBOTS_H

#include <stdbool.h>
#include <stddef.h>

/** Most bytes of a robots.txt read (RFC 9309 asks for at least 500 KiB). */
#define NA_ROBOTS_MAX_BYTES (512u * 1024u)
/** Most rules kept for one agent. */
#define NA_ROBOTS_MAX_RULES 4096u

typedef struct na_robots_s na_robots_t;

/**
 * @brief The rules of robots.txt text @p buf for @p agent.
 * @param agent product token of our User-Agent ("newsalert").
 * @returns new rules; destroy with na_robots_destroy(). NULL on no memory.
 */
na_robots_t *na_robots_parse(const char *buf, size_t len, const char *agent);

/**
 * @brief Rules that allow everything (@p allow) or nothing: what a site
 *        without robots.txt (4xx) or an unreachable one (5xx) means.
 * @returns new rules; destroy with na_robots_destroy(). NULL on no memory.
 */
na_robots_t *na_robots_new_all(bool allow);

/** @brief Free; NULL-safe. */
void na_robots_destroy(na_robots_t *r);

/**
 * @brief May @p url be fetched?
 * @param url an absolute http(s) URL (its path and query are matched).
 */
bool na_robots_allowed(const na_robots_t *r, const char *url);

/**
 * @brief Test support: na_robots_allowed(), and in *@p steps the work its
 *        matching took: characters compared, those of its searches
 *        between stars included. Linear matching keeps it at most twice
 *        the pattern's length and the path's per rule; a test bounds it
 *        where timing would be a guess.
 */
bool na_robots_allowed_steps(const na_robots_t *r, const char *url, size_t *steps);

/** @returns the number of rules kept (tests, logs). */
size_t na_robots_count(const na_robots_t *r);

/**
 * @brief The product token of a User-Agent value: "newsalert" of
 *        "newsalert/0.1.0 (+https://...)", into @p out (lower case).
 */
void na_robots_agent_token(const char *user_agent, char *out, size_t size);

#endif
