/**
 * @file html.h
 * @brief HTML fragments (feed summaries and content) to plain text.
 *
 * A small single-pass state machine over the bytes, not an HTML parser:
 * tags are removed, the contents of <script>, <style> and comments are
 * dropped, block elements become line breaks, character references are
 * decoded, and whitespace is collapsed. It never allocates more than a
 * constant factor of its input and never recurses, so hostile markup
 * (unclosed tags, huge attribute values, deep nesting) costs linear time.
 */
#ifndef NEWSALERT_HTML_H
#define NEWSALERT_HTML_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Convert an HTML fragment to plain text.
 *
 * - Tags are removed; `<script>`, `<style>`, `<!-- -->`, `<!...>` and `<?...?>`
 *   vanish with their contents; `<![CDATA[..]]>` keeps its text.
 * - `<br>`, `<li>`, `<div>`, `<tr>` and similar become one line break;
 *   `<p>`, headings, lists, `<blockquote>`, `<table>`, `<hr>` become a blank
 *   line; `<td>`/`<th>` a space. Other whitespace runs (including U+00A0
 *   and `&nbsp;`) collapse to one space. No leading or trailing whitespace.
 * - Named references of HTML 4 (all 253, e.g. `&amp;` `&mdash;` `&hellip;`
 *   `&eacute;`) and numeric ones (`&#8212;` `&#x2014;`, the ';' optional)
 *   are decoded; `&#128;`..`&#159;` map as windows-1252 does, as browsers
 *   do; NUL, surrogates and values past U+10FFFF become U+FFFD. Unknown
 *   named references stay as written.
 * - The result is valid UTF-8: invalid input bytes become U+FFFD, control
 *   characters other than newline become spaces.
 *
 * @returns new string; free(). NULL on no memory.
 */
char *na_html_to_text(const char *html, size_t len);

/**
 * @brief Normalise plain text the way na_html_to_text() lays out its
 *        output, without looking for tags or references: a whitespace run
 *        holding two or more newlines becomes a blank line, one newline a
 *        line break, any other run one space; trimmed; valid UTF-8.
 * @returns new string; free(). NULL on no memory.
 */
char *na_html_plain_text(const char *text, size_t len);

/** @brief Turn every line break of @p s into one space, in place (titles). */
void na_html_flatten(char *s);

/**
 * @brief Look up an HTML 4 named character reference (case-sensitive,
 *        without '&' and ';').
 * @returns its code point, or -1 when @p name is not one.
 */
int32_t na_html_entity_lookup(const char *name, size_t len);

/**
 * @brief Encode code point @p cp as UTF-8 into @p out; invalid code points
 *        (surrogates, > U+10FFFF) become U+FFFD.
 * @returns the number of bytes written (1..4).
 */
size_t na_html_utf8_encode(uint32_t cp, char out[4]);

#endif
