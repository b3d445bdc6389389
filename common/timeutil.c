#include "newsalert/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t na_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t na_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t na_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void na_time_format_rfc3339(int64_t t, char buf[NA_RFC3339_LEN]) {
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(buf, NA_RFC3339_LEN, "1970-01-01T00:00:00Z");
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(buf, tmp, NA_RFC3339_LEN - 1);
    buf[NA_RFC3339_LEN - 1] = '\0';
}

void na_time_format_rfc3339_ms(int64_t ms, char buf[NA_RFC3339_MS_LEN]) {
    int64_t sec = ms / 1000 - (ms % 1000 < 0);
    int frac = (int)(ms % 1000);
    frac += frac < 0 ? 1000 : 0;
    char whole[NA_RFC3339_LEN];
    na_time_format_rfc3339(sec, whole);
    if (!frac) {
        snprintf(buf, NA_RFC3339_MS_LEN, "%s", whole);
        return;
    }
    snprintf(buf, NA_RFC3339_MS_LEN, "%.19s.%03uZ", whole, (unsigned)frac % 1000u);
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p)) {
            return -1;
        }
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

/* Days in month @p mon (1..12) of @p year, proleptic Gregorian. */
static int days_in_month(int year, int mon) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mdays[mon - 1] + (mon == 2 && leap);
}

/* The time of @p s in seconds in *t, and the milliseconds of its fraction
 * (0-999, further digits cut) in *frac_ms. */
static na_err_t parse_rfc3339(const char *s, int64_t *t, int *frac_ms) {
    struct tm tm;
    int year, mon, day, hh = 0, mm = 0, ss = 0, off = 0, frac = 0;
    const char *p = s;

    memset(&tm, 0, sizeof(tm));
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-' ||
        digits(&p, 2, &day)) {
        return NA_ERR_INVALID;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &hh) || *p++ != ':' || digits(&p, 2, &mm)) {
            return NA_ERR_INVALID;
        }
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &ss)) {
                return NA_ERR_INVALID;
            }
        }
        if (*p == '.' || *p == ',') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                return NA_ERR_INVALID;
            }
            for (int scale = 100; isdigit((unsigned char)*p); p++, scale /= 10) {
                frac += (*p - '0') * scale;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om = 0;
            p++;
            if (digits(&p, 2, &oh)) {
                return NA_ERR_INVALID;
            }
            if (*p == ':') {
                p++;
            }
            if (isdigit((unsigned char)*p) && digits(&p, 2, &om)) {
                return NA_ERR_INVALID;
            }
            if (oh > 23 || om > 59) {
                return NA_ERR_INVALID;
            }
            off = sign * (oh * 3600 + om * 60);
        }
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    /* The day must exist: timegm() would read 2026-02-30 as March 2. */
    if (*p || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
        hh > 23 || mm > 59 || ss > 60) {
        return NA_ERR_INVALID;
    }
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    *t = (int64_t)timegm(&tm) - off;
    *frac_ms = frac;
    return NA_OK;
}

na_err_t na_time_parse_rfc3339(const char *s, int64_t *t) {
    int frac_ms;
    return parse_rfc3339(s, t, &frac_ms);
}

na_err_t na_time_parse_rfc3339_ms(const char *s, int64_t *ms) {
    int64_t t;
    int frac_ms;
    na_err_t err = parse_rfc3339(s, &t, &frac_ms);
    if (err) {
        return err;
    }
    *ms = t * 1000 + frac_ms; /* |t| < 2^38: years 0000 to 9999 */
    return NA_OK;
}

na_err_t na_duration_parse_ms(const char *s, int64_t *ms) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    /* strtod() reads "nan" too: no duration, and no integer to convert to. */
    if (errno || end == s || isnan(v) || v < 0) {
        return NA_ERR_INVALID;
    }
    double mult;
    if (!strcmp(end, "ms")) {
        mult = 1;
    } else if (!strcmp(end, "s") || !*end) {
        mult = 1000;
    } else if (!strcmp(end, "m")) {
        mult = 60000;
    } else if (!strcmp(end, "h")) {
        mult = 3600000;
    } else if (!strcmp(end, "d")) {
        mult = 86400000;
    } else {
        return NA_ERR_INVALID;
    }
    if (v * mult > 9.2e18) {
        return NA_ERR_INVALID;
    }
    *ms = (int64_t)(v * mult);
    return NA_OK;
}

void na_sleep_ms(int64_t ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}
