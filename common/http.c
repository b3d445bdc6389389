#include "newsalert/http.h"

#include <ctype.h>
#include <stdlib.h>

#include "newsalert/util.h"

na_err_t na_http_global_init(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? NA_OK : NA_ERR_HTTP;
}

void na_http_global_cleanup(void) {
    curl_global_cleanup();
}

na_outcome_t na_http_classify(CURLcode code, long status) {
    if (code != CURLE_OK) {
        switch (code) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_TOO_MANY_REDIRECTS:
        case CURLE_FILESIZE_EXCEEDED:
            return NA_OUTCOME_DROP;
        case CURLE_OUT_OF_MEMORY:
            return NA_OUTCOME_RETRY;
        default:
            /* Timeouts, refused connections, resets, DNS: the other side may
             * come back. */
            return NA_OUTCOME_RETRY;
        }
    }
    if (status >= 200 && status < 300) {
        return NA_OUTCOME_OK;
    }
    if (status == 408 || status == 425 || status == 429 || status >= 500) {
        return NA_OUTCOME_RETRY;
    }
    return NA_OUTCOME_DROP;
}

int64_t na_http_retry_after_ms(const char *value, int64_t now_s) {
    const int64_t cap_ms = 24LL * 3600 * 1000;
    if (!value) {
        return -1;
    }
    while (isspace((unsigned char)*value)) {
        value++;
    }
    if (isdigit((unsigned char)*value)) {
        /* Any number of digits: a delay past the cap is the cap, however
         * it is written (a server that says 4294967295 asks for the
         * longest wait, not for none). */
        int64_t secs = 0;
        const char *p = value;
        for (; isdigit((unsigned char)*p); p++) {
            if (secs <= cap_ms / 1000) {
                secs = secs * 10 + (*p - '0');
            }
        }
        if (*p && !isspace((unsigned char)*p)) {
            return -1;
        }
        return secs * 1000 > cap_ms ? cap_ms : secs * 1000;
    }
    time_t t = curl_getdate(value, NULL);
    if (t == (time_t)-1) {
        return -1;
    }
    int64_t d = ((int64_t)t - now_s) * 1000;
    if (d < 0) {
        return 0;
    }
    return d > cap_ms ? cap_ms : d;
}
