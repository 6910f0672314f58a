/* spx_progress.h: library stages report progress through a callback; only the CLI prints it. */
#ifndef SPX_PROGRESS_H
#define SPX_PROGRESS_H

typedef void (*spx_progress_fn)(void *ud, const char *stage, unsigned long long done,
                                unsigned long long total);

typedef struct spx_progress {
    spx_progress_fn fn;   /* NULL: silent */
    void *ud;
} spx_progress;

static inline void spx_progress_report(const spx_progress *p, const char *stage,
                                       unsigned long long done, unsigned long long total)
{
    if (p && p->fn)
        p->fn(p->ud, stage, done, total);
}

#endif
