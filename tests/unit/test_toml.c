/*
 * test_toml.c -- unit tests of the TOML reader (src/conf/toml.c).
 *
 * Valid documents of every supported type are parsed and walked; every
 * rejection is checked for its exact "name:line: message" prefix; then a
 * deterministic mutation loop throws corrupted documents at the parser
 * (under ASan in the test build) as a cheap always-on complement to the
 * libFuzzer target tests/fuzz/fuzz_toml.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/toml.h"

static struct toml_value *
parse_ok(const char *doc)
{
    char err[256];
    struct toml_value *root = toml_parse(doc, strlen(doc), NULL, err, sizeof(err));
    if (root == NULL) {
        fail_msg("unexpected parse error: %s\n--- document:\n%s", err, doc);
    }
    assert_int_equal(root->type, TOML_TABLE);
    return root;
}

/* Parse len bytes expecting failure with "<input>:line: " + want as a prefix. */
static void
parse_err_n(const char *doc, size_t len, int line, const char *want)
{
    char err[256], expect[256];
    struct toml_value *root = toml_parse(doc, len, NULL, err, sizeof(err));
    if (root != NULL) {
        toml_free(root);
        fail_msg("document parsed but should fail with \"%s\":\n%s", want, doc);
    }
    snprintf(expect, sizeof(expect), "<input>:%d: %s", line, want);
    if (strncmp(err, expect, strlen(expect)) != 0) {
        fail_msg("error mismatch\n  got:  %s\n  want: %s...", err, expect);
    }
}

static void
parse_err(const char *doc, int line, const char *want)
{
    parse_err_n(doc, strlen(doc), line, want);
}

static const struct toml_value *
get(const struct toml_value *root, const char *path, enum toml_type type)
{
    const struct toml_value *v = toml_get_path(root, path);
    if (v == NULL) {
        fail_msg("missing %s", path);
    }
    if (v->type != type) {
        fail_msg("%s is a %s, expected %s", path, toml_type_name(v->type), toml_type_name(type));
    }
    return v;
}

static void
test_strings(void **state)
{
    struct toml_value *r = parse_ok(
        "basic = \"tab\\there \\\"q\\\" back\\\\slash\"\n"
        "uni = \"\\u00e9\\U0001F980 caf\xc3\xa9\"\n"
        "esc = \"\\b\\f\\n\\r\"\n"
        "lit = 'C:\\path\\n'\n"
        "empty = \"\"\n"
        "emptylit = ''\n"
        "nul = \"a\\u0000b\"\n");
    assert_string_equal(get(r, "basic", TOML_STRING)->u.str.ptr, "tab\there \"q\" back\\slash");
    assert_string_equal(get(r, "uni", TOML_STRING)->u.str.ptr, "\xc3\xa9\xf0\x9f\xa6\x80 caf\xc3\xa9");
    assert_string_equal(get(r, "esc", TOML_STRING)->u.str.ptr, "\b\f\n\r");
    assert_string_equal(get(r, "lit", TOML_STRING)->u.str.ptr, "C:\\path\\n");
    assert_int_equal(get(r, "empty", TOML_STRING)->u.str.len, 0);
    assert_int_equal(get(r, "emptylit", TOML_STRING)->u.str.len, 0);
    const struct toml_value *nul = get(r, "nul", TOML_STRING);
    assert_int_equal(nul->u.str.len, 3);
    assert_memory_equal(nul->u.str.ptr, "a\0b", 3);
    toml_free(r);
}

static void
test_multiline_strings(void **state)
{
    struct toml_value *r = parse_ok(
        "a = \"\"\"\nline1\nline2\"\"\"\n"
        "b = \"\"\"one \\\n     two \\\n\n   three\"\"\"\n"
        "c = '''\nraw \\n text\n'''\n"
        "d = \"\"\"has \"\" quotes\"\"\"\"\"\n"
        "e = '''x'''''\n"
        "f = \"\"\"\r\ncrlf\r\nend\"\"\"\n"
        "g = 1\n");
    assert_string_equal(get(r, "a", TOML_STRING)->u.str.ptr, "line1\nline2");
    assert_string_equal(get(r, "b", TOML_STRING)->u.str.ptr, "one two three");
    assert_string_equal(get(r, "c", TOML_STRING)->u.str.ptr, "raw \\n text\n");
    assert_string_equal(get(r, "d", TOML_STRING)->u.str.ptr, "has \"\" quotes\"\"");
    assert_string_equal(get(r, "e", TOML_STRING)->u.str.ptr, "x''");
    assert_string_equal(get(r, "f", TOML_STRING)->u.str.ptr, "crlf\nend");
    /* line counting continues correctly after multi-line strings */
    assert_int_equal(get(r, "g", TOML_INTEGER)->line, 16);
    toml_free(r);
}

static void
test_integers(void **state)
{
    struct toml_value *r = parse_ok(
        "a = 42\nb = -17\nc = +99\nd = 1_000_000\ne = 0\nf = -0\n"
        "g = 0xDEAD_beef\nh = 0o755\ni = 0b1101\n"
        "max = 9223372036854775807\nmin = -9223372036854775808\nhexmax = 0x7fffffffffffffff\n");
    assert_int_equal(get(r, "a", TOML_INTEGER)->u.i, 42);
    assert_int_equal(get(r, "b", TOML_INTEGER)->u.i, -17);
    assert_int_equal(get(r, "c", TOML_INTEGER)->u.i, 99);
    assert_int_equal(get(r, "d", TOML_INTEGER)->u.i, 1000000);
    assert_int_equal(get(r, "e", TOML_INTEGER)->u.i, 0);
    assert_int_equal(get(r, "f", TOML_INTEGER)->u.i, 0);
    assert_int_equal(get(r, "g", TOML_INTEGER)->u.i, 0xdeadbeef);
    assert_int_equal(get(r, "h", TOML_INTEGER)->u.i, 0755);
    assert_int_equal(get(r, "i", TOML_INTEGER)->u.i, 13);
    assert_true(get(r, "max", TOML_INTEGER)->u.i == INT64_MAX);
    assert_true(get(r, "min", TOML_INTEGER)->u.i == INT64_MIN);
    assert_true(get(r, "hexmax", TOML_INTEGER)->u.i == INT64_MAX);
    toml_free(r);
}

static void
test_floats_and_bools(void **state)
{
    struct toml_value *r = parse_ok(
        "a = 0.85\nb = -3.5e2\nc = 5e+22\nd = 1E-2\ne = 1_000.000_5\nf = inf\ng = -inf\n"
        "h = nan\ni = +nan\nj = 0.0\nk = -0.0\nt = true\nu = false\n");
    assert_true(get(r, "a", TOML_FLOAT)->u.f == 0.85);
    assert_true(get(r, "b", TOML_FLOAT)->u.f == -350.0);
    assert_true(get(r, "c", TOML_FLOAT)->u.f == 5e22);
    assert_true(get(r, "d", TOML_FLOAT)->u.f == 0.01);
    assert_true(get(r, "e", TOML_FLOAT)->u.f == 1000.0005);
    assert_true(isinf(get(r, "f", TOML_FLOAT)->u.f) && get(r, "f", TOML_FLOAT)->u.f > 0);
    assert_true(isinf(get(r, "g", TOML_FLOAT)->u.f) && get(r, "g", TOML_FLOAT)->u.f < 0);
    assert_true(isnan(get(r, "h", TOML_FLOAT)->u.f));
    assert_true(isnan(get(r, "i", TOML_FLOAT)->u.f));
    assert_true(get(r, "j", TOML_FLOAT)->u.f == 0.0);
    assert_true(signbit(get(r, "k", TOML_FLOAT)->u.f));
    assert_true(get(r, "t", TOML_BOOLEAN)->u.b);
    assert_false(get(r, "u", TOML_BOOLEAN)->u.b);
    toml_free(r);
}

static void
test_tables_and_keys(void **state)
{
    struct toml_value *r = parse_ok(
        "top = 1\n"
        "[server]\n"
        "port = 8000\n"
        "tls.port = 6380\n"
        "tls.\"cert file\" = 'c.pem'\n"
        "[ \"quoted.table\" . 'inner' ]\n"
        "x = 1\n"
        "[a.b.c]\n"
        "deep = true\n"
        "[a]\n"              /* a was implied by [a.b.c]: defining it now is fine */
        "own = 2\n"
        "[server.tls.extra]\n" /* through a table made by dotted keys: allowed */
        "y = 3\n"
        "[dash-key_1]\n"
        "1234 = 'numeric bare key'\n");
    assert_int_equal(get(r, "top", TOML_INTEGER)->u.i, 1);
    assert_int_equal(get(r, "server.port", TOML_INTEGER)->u.i, 8000);
    assert_int_equal(get(r, "server.tls.port", TOML_INTEGER)->u.i, 6380);
    const struct toml_value *tls = get(r, "server.tls", TOML_TABLE);
    assert_string_equal(toml_get(tls, "cert file")->u.str.ptr, "c.pem");
    const struct toml_value *q = toml_get(r, "quoted.table");
    assert_non_null(q);
    assert_int_equal(toml_get(toml_get(q, "inner"), "x")->u.i, 1);
    assert_true(get(r, "a.b.c.deep", TOML_BOOLEAN)->u.b);
    assert_int_equal(get(r, "a.own", TOML_INTEGER)->u.i, 2);
    assert_int_equal(get(r, "server.tls.extra.y", TOML_INTEGER)->u.i, 3);
    assert_string_equal(get(r, "dash-key_1.1234", TOML_STRING)->u.str.ptr, "numeric bare key");
    /* document order and lines */
    const struct toml_value *server = get(r, "server", TOML_TABLE);
    assert_int_equal(server->line, 2);
    assert_string_equal(server->u.table.pairs[0].key, "port");
    assert_int_equal(server->u.table.pairs[0].line, 3);
    assert_int_equal(get(r, "a", TOML_TABLE)->line, 10);
    assert_null(toml_get_path(r, "server.nope"));
    assert_null(toml_get_path(r, "top.x"));
    assert_null(toml_get(get(r, "top", TOML_INTEGER), "x"));
    toml_free(r);
}

static void
test_arrays_and_inline_tables(void **state)
{
    struct toml_value *r = parse_ok(
        "empty = []\n"
        "ints = [1, 2, 3,]\n"
        "multi = [\n"
        "  \"a\",  # comment inside\n"
        "\n"
        "  'b' , # another\n"
        "]\n"
        "nested = [[1, 2], [\"x\", [true]], []]\n"
        "mixed = [1, 'two', 3.0, {k = 'v'}]\n"
        "it = { host = \"h\", port = 1, sub.deep = 2, inner = { z = [] } }\n"
        "eit = {}\n");
    assert_int_equal(get(r, "empty", TOML_ARRAY)->u.array.n, 0);
    const struct toml_value *ints = get(r, "ints", TOML_ARRAY);
    assert_int_equal(ints->u.array.n, 3);
    assert_int_equal(ints->u.array.items[2]->u.i, 3);
    const struct toml_value *multi = get(r, "multi", TOML_ARRAY);
    assert_int_equal(multi->u.array.n, 2);
    assert_string_equal(multi->u.array.items[1]->u.str.ptr, "b");
    assert_int_equal(multi->u.array.items[1]->line, 6);
    assert_int_equal(multi->line, 3);
    const struct toml_value *nested = get(r, "nested", TOML_ARRAY);
    assert_int_equal(nested->u.array.n, 3);
    assert_int_equal(nested->u.array.items[1]->u.array.items[1]->type, TOML_ARRAY);
    assert_int_equal(get(r, "mixed", TOML_ARRAY)->u.array.items[3]->type, TOML_TABLE);
    assert_int_equal(get(r, "it.port", TOML_INTEGER)->u.i, 1);
    assert_int_equal(get(r, "it.sub.deep", TOML_INTEGER)->u.i, 2);
    assert_int_equal(get(r, "it.inner.z", TOML_ARRAY)->u.array.n, 0);
    assert_int_equal(get(r, "eit", TOML_TABLE)->u.table.n, 0);
    toml_free(r);
}

static void
test_whitespace_crlf_bom(void **state)
{
    struct toml_value *r = parse_ok(
        "\xEF\xBB\xBF# BOM first\r\n"
        "\t \r\n"
        "  a\t=\t1   # trailing comment\r\n"
        "[\ttab\t]\r\n"
        "\t\tb =    \"x\"\r\n"
        "c = [\r\n  1,\r\n  2\r\n]\r\n"
        "# comment without final newline");
    assert_int_equal(get(r, "a", TOML_INTEGER)->u.i, 1);
    assert_int_equal(get(r, "tab.b", TOML_STRING)->line, 5);
    assert_int_equal(get(r, "tab.c", TOML_ARRAY)->u.array.items[1]->line, 8);
    toml_free(r);
    r = parse_ok("");
    assert_int_equal(r->u.table.n, 0);
    toml_free(r);
    r = parse_ok("\n\n   \n# only comments\n");
    toml_free(r);
    r = parse_ok("x=1");
    assert_int_equal(get(r, "x", TOML_INTEGER)->u.i, 1);
    toml_free(r);
}

static void
test_rejections(void **state)
{
    static const struct {
        const char *doc;
        int line;
        const char *msg;
    } cases[] = {
        {"a = 1\nb = 2\na = 3\n", 3, "duplicate key 'a' (first defined at line 1)"},
        {"[t]\nx = 1\n[t]\n", 3, "table 't' is defined twice (first at line 1)"},
        {"a.b = 1\n[a]\n", 2, "table 'a' is defined twice"},
        {"[t]\nx.y = 1\nx.y = 2\n", 3, "duplicate key 'y'"},
        {"[a.b]\n[a]\nb.c = 1\n", 3, "cannot add keys to table 'b' (line 1) with a dotted key"},
        {"a = {x = 1}\n[a]\n", 2, "cannot extend inline table 'a'"},
        {"a = {x = 1}\na.y = 2\n", 2, "cannot add keys to inline table 'a'"},
        {"a = {x = 1}\n[a.b]\n", 2, "cannot extend inline table 'a'"},
        {"a = 1\n[a]\n", 2, "key 'a' is already a integer (line 1), not a table"},
        {"a = 1\na.b = 2\n", 2, "key 'a' is already a integer"},
        {"a = [1]\n[a.b]\n", 2, "key 'a' is already a array"},
        {"d = 1979-05-27\n", 1, "dates and times are not supported"},
        {"d = 1979-05-27T07:32:00Z\n", 1, "dates and times are not supported"},
        {"t = 07:32:00\n", 1, "dates and times are not supported"},
        {"\n[[fruit]]\n", 2, "arrays of tables ([[...]]) are not supported"},
        {"a = \"abc\n", 1, "unterminated string (newline before the closing quote)"},
        {"a = 'abc\nb = 1\n", 1, "unterminated string"},
        {"a = \"abc", 1, "unterminated string"},
        {"x = 1\na = '''abc\n\n", 2, "unterminated string"},
        {"a = \"\"\"x\"\"\"\"\"\"\n", 1, "too many quotes at the end of a multi-line string"},
        {"a = \"\\q\"\n", 1, "invalid escape sequence \\q in string"},
        {"a = \"\\u12\"\n", 1, "\\u escape needs 4 hex digits"},
        {"a = \"\\U1234\"\n", 1, "\\U escape needs 8 hex digits"},
        {"a = \"\\uD800\"\n", 1, "\\u escape is not a Unicode scalar value"},
        {"a = \"\\U00110000\"\n", 1, "\\U escape is not a Unicode scalar value"},
        {"a = \"x\x01y\"\n", 1, "control character 0x01 in string"},
        {"a = 'x\x7fy'\n", 1, "control character 0x7f in string"},
        {"a = 1 # bad\x01\n", 1, "control character 0x01 in comment"},
        {"a = 01\n", 1, "leading zeros are not allowed in '01'"},
        {"a = 1__0\n", 1, "invalid number '1__0'"},
        {"a = _1\n", 1, "invalid value (strings must be quoted)"},
        {"a = 1_\n", 1, "invalid number '1_'"},
        {"a = 9223372036854775808\n", 1, "integer '9223372036854775808' is out of range"},
        {"a = 0x8000000000000000\n", 1, "integer '0x8000000000000000' is out of range"},
        {"a = 0x\n", 1, "invalid hexadecimal integer '0x'"},
        {"a = 0b102\n", 1, "invalid binary integer '0b102'"},
        {"a = -0x10\n", 1, "a sign is not allowed on hex, octal or binary integers"},
        {"a = 1.\n", 1, "invalid float '1.'"},
        {"a = 1.e5\n", 1, "invalid float '1.e5'"},
        {"a = 1e\n", 1, "invalid float '1e'"},
        {"a = 1e400\n", 1, "float '1e400' is out of range"},
        {"a = .5\n", 1, "invalid value (strings must be quoted)"},
        {"a = infinity\n", 1, "invalid number 'infinity'"},
        {"a = tru\n", 1, "invalid value (strings must be quoted)"},
        {"a = truex\n", 1, "invalid value (strings must be quoted)"},
        {"a = hello\n", 1, "invalid value (strings must be quoted)"},
        {"a =\n", 1, "missing value"},
        {"a = # nothing\n", 1, "missing value"},
        {"= 1\n", 1, "missing key before '='"},
        {"a b = 1\n", 1, "expected '=' after key"},
        {"a\n", 1, "expected '=' after key"},
        {"a.= 1\n", 1, "missing key before '='"},
        {"a = 1 b = 2\n", 1, "unexpected text after the value (expected a newline)"},
        {"[t] x = 1\n", 1, "unexpected text after the value"},
        {"[t\n", 1, "expected ']' at the end of the table header"},
        {"[]\n", 1, "invalid character ']' in key"},
        {"k\xc3\xa9 = 1\n", 1, "invalid character in key"},
        {"a = [1, 2\n", 2, "unterminated array"},
        {"a = [1 2]\n", 1, "expected ',' or ']' in array"},
        {"a = [,]\n", 1, "invalid value"},
        {"a = {x = 1,}\n", 1, "trailing comma in inline table"},
        {"a = {x = 1\n}\n", 1, "newline in inline table"},
        {"a = {x = 1 y = 2}\n", 1, "expected ',' or '}' in inline table"},
        {"a = {x}\n", 1, "expected '=' after key in inline table"},
        {"a = {x = 1, x = 2}\n", 1, "duplicate key 'x'"},
        {"a = \"\xff\"\n", 1, "invalid UTF-8 byte sequence"},
        {"ok = 1\na = \"\xc0\xaf\"\n", 2, "invalid UTF-8 byte sequence"},
        {"a = \"\xed\xa0\x80\"\n", 1, "invalid UTF-8 byte sequence"},
        {"a = \"\xf4\x90\x80\x80\"\n", 1, "invalid UTF-8 byte sequence"},
        {"a = \"\xe2\x82\"\n", 1, "invalid UTF-8 byte sequence"},
        {"a = 1\rb = 2\n", 1, "carriage return not followed by a newline"},
        {"a = [\r1]\n", 1, "carriage return not followed by a newline"},
        {"\"a\\u0000\" = 1\n", 1, "key contains a NUL character"},
        {"\"\"\"a\"\"\" = 1\n", 1, "multi-line strings cannot be keys"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_err(cases[i].doc, cases[i].line, cases[i].msg);
    }
    /* a NUL byte in the document is a control character */
    parse_err_n("a = \"x\0y\"\n", 10, 1, "control character 0x00 in string");
}

static void
test_limits(void **state)
{
    char doc[4096];
    size_t n = 0;
    /* arrays nested deeper than TOML_MAX_DEPTH */
    n += (size_t)snprintf(doc, sizeof(doc), "a = ");
    for (int i = 0; i < TOML_MAX_DEPTH + 5; i++) {
        doc[n++] = '[';
    }
    doc[n] = '\0';
    parse_err(doc, 1, "values nested deeper than 32 levels");
    /* exactly at the limit is fine */
    n = (size_t)snprintf(doc, sizeof(doc), "a = ");
    for (int i = 0; i < TOML_MAX_DEPTH; i++) {
        doc[n++] = '[';
    }
    for (int i = 0; i < TOML_MAX_DEPTH; i++) {
        doc[n++] = ']';
    }
    doc[n] = '\0';
    toml_free(parse_ok(doc));
    /* dotted keys with too many parts */
    n = 0;
    for (int i = 0; i < TOML_MAX_KEY_PARTS + 1; i++) {
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%sk", i ? "." : "");
    }
    snprintf(doc + n, sizeof(doc) - n, " = 1\n");
    parse_err(doc, 1, "key has more than 32 parts");
    /* a very long number token */
    n = (size_t)snprintf(doc, sizeof(doc), "a = ");
    memset(doc + n, '1', 300);
    doc[n + 300] = '\0';
    parse_err(doc, 1, "number too long");
}

static void
test_parse_file(void **state)
{
    char err[512], path[] = "/tmp/test_toml_XXXXXX";
    struct toml_value *r = toml_parse_file("/nonexistent/dir/x.toml", err, sizeof(err));
    assert_null(r);
    assert_string_equal(err, "/nonexistent/dir/x.toml: cannot read: No such file or directory");
    r = toml_parse_file("/tmp", err, sizeof(err));
    assert_null(r);
    assert_non_null(strstr(err, "/tmp: cannot read: "));

    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "[wal]\nsync_policy = \"sync\"\nbad = \n";
    assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
    close(fd);
    r = toml_parse_file(path, err, sizeof(err));
    assert_null(r);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: missing value", path);
    assert_string_equal(err, want);
    unlink(path);
}

static void
test_type_names_and_null_err(void **state)
{
    assert_string_equal(toml_type_name(TOML_TABLE), "table");
    assert_string_equal(toml_type_name(TOML_ARRAY), "array");
    assert_string_equal(toml_type_name(TOML_STRING), "string");
    assert_string_equal(toml_type_name(TOML_INTEGER), "integer");
    assert_string_equal(toml_type_name(TOML_FLOAT), "float");
    assert_string_equal(toml_type_name(TOML_BOOLEAN), "boolean");
    /* errlen 0: no message written, still fails cleanly */
    assert_null(toml_parse("a = ", 4, "x", NULL, 0));
    /* named input */
    char err[64];
    assert_null(toml_parse("a", 1, "conf.toml", err, sizeof(err)));
    assert_string_equal(err, "conf.toml:1: expected '=' after key");
    toml_free(NULL);
}

/* Deterministic corruption of valid documents: must never crash or leak. */
static void
test_mutations(void **state)
{
    static const char *const seeds[] = {
        "port = 8000\nbind = \"0.0.0.0\"\n[security]\nallowed_ips = [\"10.0.0.0/8\", '::1']\n"
        "[eviction]\nhigh_watermark = 0.85\npolicy = 'tinylfu'\n",
        "a = { b = [1, 2.5e3, \"\\u00e9\"], c.d = true }\n[x.\"y z\"]\nm = \"\"\"\nmulti\\\n  line\"\"\"\n",
        "n = [[1], [0x1f, 0o7, 0b1], [inf, -nan]]\nlit = '''\nraw'''\n# end\r\n",
    };
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    char buf[512], err[256];
    const char alphabet[] = "[]{}\"'=.,#\\\n\r\t 0x_-+e:aZ\x01\xc3\xa9\xff";
    for (int iter = 0; iter < 30000; iter++) {
        const char *s = seeds[iter % 3];
        size_t len = strlen(s);
        memcpy(buf, s, len);
        int edits = 1 + (int)(rng % 4);
        for (int e = 0; e < edits; e++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t pos = (size_t)(rng % len);
            int op = (int)((rng >> 20) % 3);
            char c = alphabet[(rng >> 32) % (sizeof(alphabet) - 1)];
            if (op == 0) {
                buf[pos] = c;
            } else if (op == 1 && len + 1 < sizeof(buf)) {
                memmove(buf + pos + 1, buf + pos, len - pos);
                buf[pos] = c;
                len++;
            } else if (len > 1) {
                memmove(buf + pos, buf + pos + 1, len - pos - 1);
                len--;
            }
        }
        struct toml_value *r = toml_parse(buf, len, NULL, err, sizeof(err));
        if (r == NULL) {
            assert_true(strncmp(err, "<input>:", 8) == 0);
        }
        toml_free(r);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_multiline_strings),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats_and_bools),
        cmocka_unit_test(test_tables_and_keys),
        cmocka_unit_test(test_arrays_and_inline_tables),
        cmocka_unit_test(test_whitespace_crlf_bom),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_type_names_and_null_err),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
