/* core/cli/ckpt_cmd.h — `dkhost ckpt`: inspect and verify checkpoint files. */
#ifndef DKH_CKPT_CMD_H
#define DKH_CKPT_CMD_H

/* Runs `dkhost ckpt SUB FILE` with argv[0] = "ckpt": `info` prints the
 * metadata and a tensor table and verifies every tensor, `verify` only
 * verifies. Writes to stdout and stderr; returns the exit code (docs/cli.md):
 * 0 intact, 2 usage error, 5 missing, unreadable or damaged file, 1 other. */
int dkh_cli_ckpt(int argc, char **argv);

#endif /* DKH_CKPT_CMD_H */
