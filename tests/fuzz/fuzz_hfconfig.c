/* fuzz_hfconfig.c: config.json -> model config mapping (spx_hfconfig_parse) on arbitrary text.
 *
 * Oracles for a config that parses: spx_config_validate accepts it, model_type is NUL-terminated,
 * and the architecture table (if any) yields a shape for every tensor the config says exists. */
#include <string.h>

#include "fuzz_target.h"
#include "spx_archmap.h"
#include "spx_hfconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig hc;
    int rc = spx_hfconfig_parse(&ctx, (const char *)data, size, "fuzz/config.json", &hc);
    FUZZ_ASSERT(rc <= 0, "positive return code");
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    FUZZ_ASSERT(memchr(hc.model_type, 0, sizeof hc.model_type) != NULL, "model_type not terminated");
    FUZZ_ASSERT(memchr(hc.cfg.arch, 0, sizeof hc.cfg.arch) != NULL, "arch not terminated");
    FUZZ_ASSERT(spx_config_validate(&ctx, &hc.cfg) == 0, "parsed config fails validation: %s", ctx.msg);
    const spx_archmap *m = spx_archmap_find(hc.cfg.arch);
    if (m) {
        for (size_t i = 0; i < m->count; i++) {
            const spx_archmap_entry *e = &m->entries[i];
            if (!spx_archmap_present(e, &hc.cfg))
                continue;
            uint64_t dims[2] = {0, 0};
            uint32_t ndim = 0;
            char name[256];
            spx_archmap_shape(e, &hc.cfg, dims, &ndim);
            FUZZ_ASSERT(ndim >= 1 && ndim <= 2 && dims[0] > 0 && (ndim == 1 || dims[1] > 0), "entry %zu shape", i);
            spx_archmap_canon_name(e, hc.cfg.n_layers - 1, name, sizeof name);
            FUZZ_ASSERT(spx_archmap_src_name(e, hc.cfg.n_layers - 1, name, sizeof name) == 0, "src name of entry %zu", i);
        }
    }
    return 0;
}
