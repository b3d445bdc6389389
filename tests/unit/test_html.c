#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "newsalert/util.h"

struct html_case {
    const char *in;
    const char *out;
};

static const struct html_case cases[] = {
    {"", ""},
    {"plain words", "plain words"},
    {"  lots \t of\n\n  space  ", "lots of space"},
    {"<p>One.</p><p>Two.</p>", "One.\n\nTwo."},
    {"line<br>break<br/>again<BR />end", "line\nbreak\nagain\nend"},
    {"<div>a</div><div>b</div>", "a\nb"},
    {"<ul><li>x</li><li>y</li></ul>after", "x\ny\n\nafter"},
    {"<h2>Head</h2>body", "Head\n\nbody"},
    {"<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>", "1 2\n3"},
    {"in<b>line</b> <i>tags</i> <a href=\"x\">stay</a> joined",
     "inline tags stay joined"},
    {"a<script>var x = '<p>no</p>';</script>b", "ab"},
    {"a<SCRIPT type=text/javascript>if (a</b) {}</script >b", "ab"},
    {"a<style>p { color: red }</style>b", "ab"},
    {"a<script>never closed <p>text", "a"},
    {"a<script/>b", "ab"},
    {"a<!-- hidden <p>comment</p> -->b", "ab"},
    {"a<!DOCTYPE html>b<?php echo 1 ?>c", "abc"},
    {"<![CDATA[kept <as> text]]>", "kept <as> text"},
    {"a < b and c > d", "a < b and c > d"},
    {"x <3 y", "x <3 y"},
    {"Plain <angle> brackets </angle>", "Plain <angle> brackets </angle>"},
    {"x<y and z>w", "x<y and z>w"},
    {"<b.>not a tag", "<b.>not a tag"},
    {"<o:p>Word</o:p> <my-widget>custom</my-widget>", "Word custom"},
    {"<P>Upper</P><Br>Case", "Upper\n\nCase"},
    {"<a title=\"1 > 0\" href='q>r'>link</a>", "link"},
    {"unterminated <a href=\"x", "unterminated"},
    {"&amp; &lt; &gt; &quot; &apos;", "& < > \" '"},
    {"a&nbsp;b&nbsp;&nbsp;c", "a b c"},
    {"a\xc2\xa0\xc2\xa0z", "a z"},
    {"&mdash;&ndash;&hellip;", "\xe2\x80\x94\xe2\x80\x93\xe2\x80\xa6"},
    {"&lsquo;q&rsquo; &ldquo;qq&rdquo;",
     "\xe2\x80\x98q\xe2\x80\x99 \xe2\x80\x9cqq\xe2\x80\x9d"},
    {"caf&eacute; &Eacute;t&eacute; &euro;5 &copy;",
     "caf\xc3\xa9 \xc3\x89t\xc3\xa9 \xe2\x82\xac"
     "5 \xc2\xa9"},
    {"&#65;&#x42;&#X43;&#0067;", "ABCC"},
    {"&#8212;&#x2014;", "\xe2\x80\x94\xe2\x80\x94"},
    {"&#128512;", "\xf0\x9f\x98\x80"},
    {"&#150;&#x93;", "\xe2\x80\x93\xe2\x80\x9c"}, /* windows-1252 range */
    {"&#0;&#xD800;&#x110000;&#99999999999;",
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"&#65 x", "A x"},
    {"&#; &#x; &", "&#; &#x; &"},
    {"&unknown; &AMP; stays", "&unknown; &AMP; stays"},
    {"AT&T and Q&A", "AT&T and Q&A"},
    {"fish &amp chips &lt3", "fish & chips <3"},
    {"&ampere &ltd", "&ampere &ltd"},
    {"&amp;lt;b&amp;gt;", "&lt;b&gt;"}, /* decoded once, not twice */
    {"bad \xff byte", "bad \xef\xbf\xbd byte"},
    {"ctl\x01"
     "char",
     "ctl char"},
    {"<p>\n  First\n  para.\n</p>\n<p>Second</p>\n", "First para.\n\nSecond"},
    {"</p></p><br><br>text", "text"},
    {"<p><br></p>", ""},
};

static void test_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = na_html_to_text(cases[i].in, strlen(cases[i].in));
        assert_non_null(got);
        if (strcmp(got, cases[i].out)) {
            print_error("case %zu: in=[%s]\n want=[%s]\n got =[%s]\n", i, cases[i].in,
                        cases[i].out, got);
        }
        assert_string_equal(got, cases[i].out);
        assert_true(na_utf8_valid(got, strlen(got)));
        free(got);
    }
}

/* Input with embedded NUL bytes is handled by length, not as a C string. */
static void test_embedded_nul(void **state) {
    (void)state;
    static const char in[] = "a\0b<p>c";
    char *got = na_html_to_text(in, sizeof(in) - 1);
    assert_non_null(got);
    assert_string_equal(got, "a b\n\nc");
    free(got);
}

static void test_plain_text(void **state) {
    (void)state;
    const char *in = "  one\r\n two  \n\n\n three\t\tfour \xff ";
    char *got = na_html_plain_text(in, strlen(in));
    assert_non_null(got);
    assert_string_equal(got, "one\ntwo\n\nthree four \xef\xbf\xbd");
    na_html_flatten(got);
    assert_string_equal(got, "one two three four \xef\xbf\xbd");
    free(got);
    got = na_html_plain_text("<b>&amp;</b>", 12);
    assert_string_equal(got, "<b>&amp;</b>"); /* plain text is not HTML */
    free(got);
}

static void test_entity_lookup(void **state) {
    (void)state;
    assert_int_equal(na_html_entity_lookup("amp", 3), '&');
    assert_int_equal(na_html_entity_lookup("nbsp", 4), 0xa0);
    assert_int_equal(na_html_entity_lookup("AElig", 5), 0xc6);
    assert_int_equal(na_html_entity_lookup("zwnj", 4), 0x200c);
    assert_int_equal(na_html_entity_lookup("Aacute", 6), 0xc1);
    assert_int_equal(na_html_entity_lookup("aacute", 6), 0xe1);
    assert_int_equal(na_html_entity_lookup("ampx", 4), -1);
    assert_int_equal(na_html_entity_lookup("am", 2), -1);
    assert_int_equal(na_html_entity_lookup("", 0), -1);
    /* the name is taken by length, not up to a NUL */
    assert_int_equal(na_html_entity_lookup("ltgt", 2), '<');
}

/* Large hostile input stays linear: 1 MiB of unclosed tags and entities. */
static void test_hostile_large(void **state) {
    (void)state;
    size_t len = 1u << 20;
    char *in = malloc(len);
    assert_non_null(in);
    for (size_t i = 0; i < len; i++) {
        in[i] = "<a&#<!x"[i % 7];
    }
    char *got = na_html_to_text(in, len);
    assert_non_null(got);
    assert_true(na_utf8_valid(got, strlen(got)));
    free(got);
    len = 5 * 200000;
    for (size_t i = 0; i < len; i++) {
        in[i] = "&amp;"[i % 5];
    }
    got = na_html_to_text(in, len);
    assert_non_null(got);
    assert_int_equal(strlen(got), len / 5);
    free(got);
    free(in);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),         cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_plain_text),    cmocka_unit_test(test_entity_lookup),
        cmocka_unit_test(test_hostile_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
