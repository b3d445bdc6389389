/**
 * @file util.h
 * @brief Small building blocks: a growable string buffer, bounded file
 *        reads, UTF-8 validation and safe truncation.
 */
#ifndef NEWSALERT_UTIL_H
#define NEWSALERT_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "newsalert/err.h"

/** A growable NUL-terminated byte buffer. Embed it; _init/_cleanup. */
struct na_buf {
    char *data;  /**< always NUL-terminated once anything was appended */
    size_t len;  /**< bytes used, excluding the NUL */
    size_t size; /**< bytes allocated */
    bool oom;    /**< an append failed; later appends are ignored */
};

void na_buf_init(struct na_buf *buf);
void na_buf_cleanup(struct na_buf *buf);
/** @brief Append @p len bytes; on no memory sets buf->oom. */
void na_buf_append(struct na_buf *buf, const void *data, size_t len);
void na_buf_puts(struct na_buf *buf, const char *s);
void na_buf_printf(struct na_buf *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/**
 * @brief Append @p s (valid UTF-8, na_utf8_valid()) as a quoted JSON string,
 *        escaped as jansson's json_dumps() writes it without flags: \" \\
 *        \b \f \n \r \t, other bytes below 0x20 as \u00XX (upper-case
 *        hex), everything else as it is.
 */
void na_buf_json_string(struct na_buf *buf, const char *s);
/** @returns the buffer's string, taken from @p buf (reset to empty); free(). */
char *na_buf_steal(struct na_buf *buf);

/** @returns new copy of @p s (NULL stays NULL); free(). */
char *na_strdup(const char *s);
/** @returns new copy of the first @p n bytes of @p s, NUL-terminated; free(). */
char *na_strndup(const char *s, size_t n);

/**
 * @brief Read a whole file (or stdin when @p path is "-") of at most
 *        @p max_bytes.
 * @param out new NUL-terminated buffer; free().
 * @returns NA_OK, NA_ERR_IO (errstr names path and errno text) or
 *          NA_ERR_TOO_LARGE.
 */
NA_WUR na_err_t na_read_file(const char *path, size_t max_bytes, char **out,
                             size_t *out_len, char *errstr, size_t errstr_size);

/**
 * @brief Write @p len bytes to @p path atomically: a temporary file in the
 *        same folder, fsync, rename, fsync of the folder. A crash leaves the
 *        old or the new content, never a mix.
 */
NA_WUR na_err_t na_write_file_atomic(const char *path, const void *data, size_t len,
                                     char *errstr, size_t errstr_size);

/**
 * @brief As na_write_file_atomic() but without the fsync of the folder: the
 *        file is replaced atomically (a crash leaves the old or the new
 *        content), and the new content is durable once na_fsync_dir() of its
 *        folder returned. Many files written in a row pay that fsync once.
 */
NA_WUR na_err_t na_write_file_replace(const char *path, const void *data, size_t len,
                                      char *errstr, size_t errstr_size);

/** @brief fsync a folder: makes the renames and removals in it durable. */
NA_WUR na_err_t na_fsync_dir(const char *dir, char *errstr, size_t errstr_size);

/** @returns true when @p s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool na_utf8_valid(const char *s, size_t len);

/**
 * @brief Largest length <= @p max that does not split a UTF-8 sequence of
 *        valid UTF-8 string @p s of length @p len.
 */
size_t na_utf8_cut(const char *s, size_t len, size_t max);

/**
 * @returns new copy of @p s[0..len) with every invalid UTF-8 sequence and
 *          every control character other than \n and \t replaced by U+FFFD
 *          or a space; free().
 */
char *na_utf8_sanitize(const char *s, size_t len);

/**
 * @brief Parse a whole decimal integer in [min, max].
 * @returns NA_OK or NA_ERR_INVALID (also for trailing garbage or overflow).
 */
NA_WUR na_err_t na_parse_int64(const char *s, long long min, long long max,
                               long long *out);

#endif
