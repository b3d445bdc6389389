/**
 * @file cmd_parse.h
 * @brief `newsalert-producer parse [--base-url URL] FILE|-`: parse one feed
 *        document and print its articles as article/v1 JSON lines.
 */
#ifndef NEWSALERT_CMD_PARSE_H
#define NEWSALERT_CMD_PARSE_H

/**
 * @brief Run the parse command.
 *
 * Each item gets source.feed_url = the base URL (or "file:" + FILE),
 * source.id = "cli", source.name = FILE ("stdin" for "-"), fetched_at =
 * now; then its id, and one compact JSON line on stdout. published_at is
 * printed as the feed says (no clamping to the fetch time here).
 *
 * @param argv argv[0] is "parse"; the options and FILE follow.
 * @returns the exit code: 0 on success (also for a feed without items),
 *          1 with one line "newsalert-producer: parse: FILE: problem" on
 *          stderr when the file cannot be read or parsed, 2 on bad usage
 *          (usage on stderr). `--help` prints usage on stdout and gives 0.
 */
int na_cmd_parse(int argc, char **argv);

#endif
