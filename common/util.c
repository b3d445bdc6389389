#include "newsalert/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newsalert/fault.h"

void na_buf_init(struct na_buf *buf) {
    memset(buf, 0, sizeof(*buf));
}

void na_buf_cleanup(struct na_buf *buf) {
    if (!buf) {
        return;
    }
    free(buf->data);
    memset(buf, 0, sizeof(*buf));
}

static int buf_reserve(struct na_buf *buf, size_t extra) {
    if (buf->oom) {
        return -1;
    }
    if (buf->len + extra + 1 <= buf->size) {
        return 0;
    }
    size_t size = buf->size ? buf->size : 256;
    while (size < buf->len + extra + 1) {
        if (size > SIZE_MAX / 2) {
            buf->oom = true;
            return -1;
        }
        size *= 2;
    }
    char *data = realloc(buf->data, size);
    if (!data) {
        buf->oom = true;
        return -1;
    }
    buf->data = data;
    buf->size = size;
    return 0;
}

void na_buf_append(struct na_buf *buf, const void *data, size_t len) {
    if (buf_reserve(buf, len)) {
        return;
    }
    if (len) {
        memcpy(buf->data + buf->len, data, len);
    }
    buf->len += len;
    buf->data[buf->len] = '\0';
}

void na_buf_json_string(struct na_buf *buf, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    na_buf_append(buf, "\"", 1);
    for (;;) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\') {
            p++;
        }
        na_buf_append(buf, run, (size_t)(p - run));
        if (!*p) {
            break;
        }
        char esc[8];
        switch (*p) {
        case '"':
            na_buf_append(buf, "\\\"", 2);
            break;
        case '\\':
            na_buf_append(buf, "\\\\", 2);
            break;
        case '\b':
            na_buf_append(buf, "\\b", 2);
            break;
        case '\f':
            na_buf_append(buf, "\\f", 2);
            break;
        case '\n':
            na_buf_append(buf, "\\n", 2);
            break;
        case '\r':
            na_buf_append(buf, "\\r", 2);
            break;
        case '\t':
            na_buf_append(buf, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)*p);
            na_buf_append(buf, esc, 6);
            break;
        }
        p++;
    }
    na_buf_append(buf, "\"", 1);
}

void na_buf_puts(struct na_buf *buf, const char *s) {
    na_buf_append(buf, s, strlen(s));
}

void na_buf_printf(struct na_buf *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(buf, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
}

char *na_buf_steal(struct na_buf *buf) {
    char *s = buf->data;
    if (!s && !buf->oom) {
        s = calloc(1, 1);
    }
    if (buf->oom) {
        free(s);
        s = NULL;
    }
    na_buf_init(buf);
    return s;
}

char *na_strdup(const char *s) {
    return s ? na_strndup(s, strlen(s)) : NULL;
}

char *na_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) {
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

na_err_t na_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len,
                      char *errstr, size_t errstr_size) {
    na_err_t err = NA_OK;
    FILE *fp = NULL;
    struct na_buf buf;
    char chunk[65536];
    size_t n;

    na_buf_init(&buf);
    if (!strcmp(path, "-")) {
        fp = stdin;
    } else {
        fp = fopen(path, "rb");
    }
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (buf.len + n > max_bytes) {
            snprintf(errstr, errstr_size, "%s: larger than %zu bytes", path, max_bytes);
            err = NA_ERR_TOO_LARGE;
            goto out;
        }
        na_buf_append(&buf, chunk, n);
    }
    if (ferror(fp)) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    if (buf.oom) {
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        err = NA_ERR_NOMEM;
        goto out;
    }
    *out_len = buf.len;
    *out = na_buf_steal(&buf);
    if (!*out) {
        err = NA_ERR_NOMEM;
    }
out:
    if (fp && fp != stdin) {
        fclose(fp);
    }
    na_buf_cleanup(&buf);
    return err;
}

static na_err_t write_atomic(const char *path, const void *data, size_t len,
                             bool sync_dir, char *errstr, size_t errstr_size) {
    na_err_t err = NA_OK;
    char tmp[4096];
    char dirbuf[4096];
    int fd = -1;
    int dfd = -1;
    const char *p = data;

    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
        sizeof(tmp)) {
        snprintf(errstr, errstr_size, "%s: path too long", path);
        return NA_ERR_INVALID;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
            err = NA_ERR_IO;
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    /* A failed fsync still leaves the descriptor open: closed at out
     * (a daemon that retries a failing disk every second must not run out
     * of descriptors). */
    if (na_fault("file_fsync") ? (errno = EIO, true) : fsync(fd) != 0) {
        snprintf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    int rc = close(fd);
    fd = -1;
    if (rc) {
        snprintf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    if (rename(tmp, path)) {
        snprintf(errstr, errstr_size, "rename %s: %s", path, strerror(errno));
        err = NA_ERR_IO;
        goto out;
    }
    if (sync_dir) {
        snprintf(dirbuf, sizeof(dirbuf), "%s", path);
        dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
        }
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (err) {
        unlink(tmp);
    }
    return err;
}

na_err_t na_write_file_atomic(const char *path, const void *data, size_t len,
                              char *errstr, size_t errstr_size) {
    return write_atomic(path, data, len, true, errstr, errstr_size);
}

na_err_t na_write_file_replace(const char *path, const void *data, size_t len,
                               char *errstr, size_t errstr_size) {
    return write_atomic(path, data, len, false, errstr, errstr_size);
}

na_err_t na_fsync_dir(const char *dir, char *errstr, size_t errstr_size) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd)) {
        snprintf(errstr, errstr_size, "fsync %s: %s", dir, strerror(errno));
        if (dfd >= 0) {
            close(dfd);
        }
        return NA_ERR_IO;
    }
    close(dfd);
    return NA_OK;
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len) {
    unsigned char c = s[0];
    if (c < 0x80) {
        return 1;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n > len) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

bool na_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n) {
            return false;
        }
        i += n;
    }
    return true;
}

size_t na_utf8_cut(const char *s, size_t len, size_t max) {
    if (len <= max) {
        return len;
    }
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80) {
        cut--;
    }
    return cut;
}

char *na_utf8_sanitize(const char *s, size_t len) {
    struct na_buf buf;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    na_buf_init(&buf);
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n) {
            na_buf_append(&buf, "\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f) && p[i] != '\n' && p[i] != '\t') {
            na_buf_append(&buf, " ", 1);
        } else {
            na_buf_append(&buf, p + i, n);
        }
        i += n;
    }
    return na_buf_steal(&buf);
}

na_err_t na_parse_int64(const char *s, long long min, long long max, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return NA_ERR_INVALID;
    }
    *out = v;
    return NA_OK;
}
