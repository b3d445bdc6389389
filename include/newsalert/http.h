/**
 * @file http.h
 * @brief libcurl helpers shared by the fetcher and the webhook deliverer.
 */
#ifndef NEWSALERT_HTTP_H
#define NEWSALERT_HTTP_H

#include <curl/curl.h>
#include <stdint.h>

#include "newsalert/err.h"

#define NA_HTTP_USER_AGENT "newsalert/" NA_VERSION " (+https://newsalert.invalid/bot)"

/** @brief curl_global_init(); call once from main() before threads start. */
NA_WUR na_err_t na_http_global_init(void);
void na_http_global_cleanup(void);

/**
 * @brief The one place HTTP outcomes are classified. 2xx is OK; transport
 *        timeouts and connection failures, 408, 425, 429 and 5xx are RETRY;
 *        3xx (redirects are not followed for webhooks) and other 4xx are DROP.
 *        410 Gone is DROP too: the caller decides whether to retire the target.
 */
na_outcome_t na_http_classify(CURLcode code, long status);

/**
 * @brief Parse a Retry-After value: delta seconds or an HTTP date.
 * @param now_s current Unix time (seconds), for the date form.
 * @returns delay in ms (capped at one day, also when its seconds are too
 *          many to count), or -1 if absent or invalid.
 */
int64_t na_http_retry_after_ms(const char *value, int64_t now_s);

#endif
