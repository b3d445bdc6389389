#include "newsalert/err.h"

const char *na_err2str(na_err_t err) {
    static const char *names[NA_ERR__END] = {
        [NA_OK] = "success",
        [NA_ERR_NOMEM] = "out of memory",
        [NA_ERR_INVALID] = "invalid input",
        [NA_ERR_IO] = "I/O error",
        [NA_ERR_PARSE] = "parse error",
        [NA_ERR_TOO_LARGE] = "input too large",
        [NA_ERR_NOT_FOUND] = "not found",
        [NA_ERR_KAFKA] = "Kafka error",
        [NA_ERR_HTTP] = "HTTP error",
        [NA_ERR_TIMEOUT] = "timed out",
        [NA_ERR_UNSUPPORTED] = "unsupported",
        [NA_ERR_CONFIG] = "configuration error",
        [NA_ERR_USAGE] = "usage error",
        [NA_ERR_AUTH] = "authentication failed",
    };
    if ((int)err < 0 || err >= NA_ERR__END || !names[err]) {
        return "unknown error";
    }
    return names[err];
}

const char *na_outcome2str(na_outcome_t outcome) {
    switch (outcome) {
    case NA_OUTCOME_OK:
        return "ok";
    case NA_OUTCOME_RETRY:
        return "retry";
    case NA_OUTCOME_DROP:
        return "drop";
    case NA_OUTCOME_FATAL:
        return "fatal";
    }
    return "unknown";
}
