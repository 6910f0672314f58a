/* cli_calib.c: shared calibration options (see cli_calib.h). */
#include "cli_calib.h"

#include <stdlib.h>

#include "cli.h"
#include "spx_calib.h"
#include "spx_data.h"

int spx_cli_calib_opt(spx_cli_calib *c, int ch, const char *arg, const char *cmd)
{
    unsigned long long u;
    switch (ch) {
    case 0x1000: c->text = arg; return 1;
    case 0x1001: c->tokens = arg; return 1;
    case 0x1003: c->range = arg; return 1;
    case 0x1002:
        if (spx_cli_parse_u64(arg, &u) || (u != 2 && u != 4))
            return spx_cli_usage_error(cmd, "--token-width must be 2 or 4, got '%s'", arg);
        c->width = (int)u;
        return 1;
    case 0x1004: case 0x1005: case 0x1006:
        if (spx_cli_parse_u64(arg, &u) || (ch != 0x1006 && (u == 0 || u > (1u << 24))))
            return spx_cli_usage_error(cmd, "%s needs a %s integer, got '%s'",
                                       ch == 0x1004 ? "--nsamples" : ch == 0x1005 ? "--seqlen" : "--seed",
                                       ch == 0x1006 ? "non-negative" : "positive", arg);
        if (ch == 0x1004) c->nsamples = u;
        else if (ch == 0x1005) c->seqlen = u;
        else c->seed = u;
        return 1;
    default:
        return 0;
    }
}

int spx_cli_calib_check(const spx_cli_calib *c, const char *cmd)
{
    if (c->text && c->tokens)
        return spx_cli_usage_error(cmd, "give only one of --text and --tokens");
    return (c->text || c->tokens) ? 1 : 0;
}

int spx_cli_calib_windows(spx_ctx *ctx, spx_cli_calib *c, const spx_model *m, uint32_t **windows)
{
    int rc = 0;
    uint32_t *ids = NULL;
    size_t nids = 0;
    spx_data_spec ds = SPX_DATA_SPEC_INIT;
    if (!c->seqlen)
        c->seqlen = m->cfg.context_length && m->cfg.context_length < 2048 ? m->cfg.context_length : 2048;
    spx_calib_opts co = {(uint32_t)c->nsamples, (uint32_t)c->seqlen, c->seed};
    ds.text_path = c->text;
    ds.tokens_path = c->tokens;
    ds.token_width = c->width;
    if (c->range)
        SPX_TRY(rc, spx_calib_parse_range(ctx, c->range, &ds.lo, &ds.hi));
    SPX_TRY(rc, spx_data_load(ctx, m->file, m->cfg.vocab_size, &ds, &ids, &nids));
    SPX_TRY(rc, spx_calib_windows(ctx, ids, nids, &co, windows));
done:
    free(ids);
    return rc;
}
