/* log.h: one event is one line; in JSON mode that line is one JSON object,
 * however long the event's text, and it is built inside its buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "newsalert/log.h"

/* The line na_log() writes for @p kv, read back from stderr. */
static void log_line(const char *kv, char *out, size_t size) {
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    na_log(NA_LOG_ERROR, "test", "long_line", "%s", kv);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, size - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

/* Many short words (each becomes a member "w":true, four times its text)
 * fill the line to its end, where a long word comes: it was written past
 * the line's buffer and left the line an unterminated string. Every fill
 * puts the end of the buffer at another place of that word. */
static void test_json_line_near_its_size_stays_in_bounds(void **state) {
    (void)state;
    static char kv[4000];
    static char line[16384];
    na_log_set_format(NA_LOG_FORMAT_JSON);
    for (size_t words = 850; words < 920; words++) {
        size_t o = 0;
        for (size_t i = 0; i < words; i++) {
            kv[o++] = 'w';
            kv[o++] = ' ';
        }
        memset(kv + o, 'k', 300);
        o += 300;
        memcpy(kv + o, "=\"v\"", 5);
        log_line(kv, line, sizeof(line));
        size_t len = strlen(line);
        assert_true(len > 0 && len <= 8192);
        assert_int_equal(line[len - 1], '\n');
        assert_null(memchr(line, '\n', len - 1)); /* one line */
        json_error_t jerr;
        json_t *root = json_loadb(line, len, 0, &jerr);
        if (!root) {
            fail_msg("%zu words: not JSON (%s): ...%s", words, jerr.text,
                     line + (len > 80 ? len - 80 : 0));
        }
        assert_string_equal(json_string_value(json_object_get(root, "event")),
                            "long_line");
        json_decref(root);
    }
    na_log_set_format(NA_LOG_FORMAT_LOGFMT);
}

/* An unquoted value becomes a JSON number only when it is one, as JSON
 * writes numbers and as any reader can hold them: hex ids and versions of
 * digits only ("0123456789ab" cut to "012345") and C's other numbers were
 * written bare and the line was not JSON. */
static void test_json_numbers_are_json_numbers(void **state) {
    (void)state;
    static const struct {
        const char *kv;
        const char *key;
        int number; /* 1: a JSON number, 0: a string of the same text */
    } cases[] = {
        {"a=42", "a", 1},         {"a=-7", "a", 1},    {"a=0", "a", 1},
        {"a=0.25", "a", 1},       {"a=1.5e3", "a", 1}, {"a=2E-2", "a", 1},
        {"a=012345", "a", 0},     {"a=00", "a", 0},    {"a=-01", "a", 0},
        {"a=123e456789", "a", 0}, /* no reader holds it */
        {"a=nan", "a", 0},        {"a=inf", "a", 0},   {"a=-infinity", "a", 0},
        {"a=0x1f", "a", 0},       {"a=1.", "a", 0},    {"a=.5", "a", 0},
        {"a=+1", "a", 0},         {"a=1e", "a", 0},    {"a=1e+", "a", 0},
        {"a=-", "a", 0},          {"a=ab12", "a", 0},
    };
    char line[16384];
    na_log_set_format(NA_LOG_FORMAT_JSON);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        log_line(cases[i].kv, line, sizeof(line));
        json_error_t jerr;
        json_t *root = json_loads(line, 0, &jerr);
        if (!root) {
            fail_msg("%s: not JSON (%s): %s", cases[i].kv, jerr.text, line);
        }
        json_t *v = json_object_get(root, cases[i].key);
        const char *text = strchr(cases[i].kv, '=') + 1;
        if (cases[i].number ? !json_is_number(v)
                            : !json_is_string(v) || strcmp(json_string_value(v), text)) {
            fail_msg("%s: wrong member in %s", cases[i].kv, line);
        }
        json_decref(root);
    }
    na_log_set_format(NA_LOG_FORMAT_LOGFMT);
}

/* Whether s[0..len) is valid UTF-8 (no character cut short). */
static bool utf8_ok(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (!n || i + n > len) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if (((unsigned char)s[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

/* Values cut to their budget (a quoted value at 400 bytes, the event's
 * text at 4 KiB, a JSON line at 8 KiB) end between characters: a source name
 * of 200 accented letters was cut inside one, and the JSON line was not
 * UTF-8 (readers of JSON logs refuse such a line). Every offset of the cut
 * in a character of 2, 3 and 4 bytes, in both formats. */
static void test_cut_values_end_between_characters(void **state) {
    (void)state;
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x93\xb0"};
    static char value[12000];
    static char kv[13000];
    static char line[16384];
    for (int json = 0; json < 2; json++) {
        na_log_set_format(json ? NA_LOG_FORMAT_JSON : NA_LOG_FORMAT_LOGFMT);
        for (size_t c = 0; c < 3; c++) {
            for (size_t pad = 0; pad < 4; pad++) {
                for (int form = 0; form < 4; form++) {
                    /* 0: a quoted value (cut at 400 bytes), 1: a bare value
                     * (cut with the event's text at 4 KiB); after 870 words,
                     * which JSON writes as 9-byte members, 2: a quoted
                     * value and 3: a bare one, cut at the line's end */
                    size_t target = form == 1 || form == 3 ? 11000 : 1000, o = pad;
                    memset(value, 'x', pad);
                    while (o + 4 < target) {
                        memcpy(value + o, chars[c], strlen(chars[c]));
                        o += strlen(chars[c]);
                    }
                    value[o] = '\0';
                    size_t k = 0;
                    for (size_t w = 0; form >= 2 && w < 870; w++) {
                        kv[k++] = 'w';
                        kv[k++] = ' ';
                    }
                    snprintf(kv + k, sizeof(kv) - k, "a=%s",
                             form == 1 || form == 3 ? value : na_log_q(value));
                    log_line(kv, line, sizeof(line));
                    size_t len = strlen(line);
                    if (!utf8_ok(line, len)) {
                        fail_msg("json=%d char=%zu pad=%zu form=%d: not UTF-8: ...%s",
                                 json, c, pad, form, line + (len > 40 ? len - 40 : 0));
                    }
                    if (json) {
                        json_error_t jerr;
                        json_t *root = json_loadb(line, len, 0, &jerr);
                        if (!root) {
                            fail_msg("char=%zu pad=%zu form=%d: not JSON (%s)", c, pad,
                                     form, jerr.text);
                        }
                        json_decref(root);
                    }
                }
            }
        }
    }
    na_log_set_format(NA_LOG_FORMAT_LOGFMT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_line_near_its_size_stays_in_bounds),
        cmocka_unit_test(test_json_numbers_are_json_numbers),
        cmocka_unit_test(test_cut_values_end_between_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
