/**
 * @file cmd_classify.h
 * @brief The `classify` and `rules test` commands of newsalert-consumer.
 *
 * main() dispatches `newsalert-consumer classify ...` as
 * na_cmd_classify(argc - 1, argv + 1) and `newsalert-consumer rules ...` as
 * na_cmd_rules(argc - 1, argv + 1), so argv[0] is the command name.
 * Data goes to stdout, one line per diagnostic to stderr.
 */
#ifndef NEWSALERT_CMD_CLASSIFY_H
#define NEWSALERT_CMD_CLASSIFY_H

/**
 * @brief `classify [--rules FILE] [FILE..|-]`: article/v1 JSON lines (or
 *        plain text lines, taken as the content) in; one JSON line per
 *        article out: {"id","title","topics":[{"topic","score","threshold",
 *        "evidence":[{"term","matched","field","offset"}],"snippet"}],
 *        "rules_version"}.
 *        The rules file is --rules, else $NEWSALERT_RULES, else
 *        examples/rules.json. A bad line gets one stderr line naming the
 *        file and line number, and the run goes on.
 * @returns the exit code: 0 ok, 1 a bad line, an unreadable file or bad
 *          rules, 2 bad usage.
 */
int na_cmd_classify(int argc, char **argv);

/**
 * @brief `rules test FILE [--rules FILE]`: run rule test cases (JSON lines,
 *        or one JSON array, of {"name","title","summary","text","labels"}),
 *        print `ok` or `FAIL` per case with what differed and why, then
 *        `N passed, M failed`.
 * @returns the exit code: 0 all passed, 1 a failure or bad input, 2 bad
 *          usage.
 */
int na_cmd_rules(int argc, char **argv);

#endif
