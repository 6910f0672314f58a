/* test_verify_kern_pool.c: the kernel thread pool (verify/spx_kern_pool.c) under stress.
 *
 * The pool's workers spin before they sleep and the caller wakes them only when one sleeps, so the
 * hand-over has more interleavings than a plain condition variable. Checked here:
 *  - every part of every job runs exactly once, for nparts 1..5 on 1..4 threads, with jobs back to
 *    back (workers spinning) and after pauses longer than the spin (workers asleep);
 *  - no task runs after spx_kern_pool_run returned (each job's arg is a stack object that is
 *    retired on return; a late call would see the retired marker);
 *  - several threads calling at once (one holds the pool, the others run their parts inline);
 *  - spx_kern_shutdown between jobs, then restart on demand. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "spx_kernels.h"
#include "spx_test.h"

#define MAXP 8

static atomic_uint g_errors;   /* task-side failures (CHECK is not thread-safe) */

typedef struct job {
    atomic_int live;           /* 1 while spx_kern_pool_run has not returned */
    atomic_uint runs[MAXP];    /* times each part ran */
    unsigned nparts;
} job;

static void task(void *arg, unsigned part, unsigned nparts)
{
    job *j = arg;
    if (!atomic_load(&j->live) || nparts != j->nparts || part >= nparts)
        atomic_fetch_add(&g_errors, 1u);
    else
        atomic_fetch_add(&j->runs[part], 1u);
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

/* n jobs of nparts parts; pause_us > 0 sleeps between jobs. Returns the number of bad jobs. */
static unsigned run_jobs(unsigned n, unsigned nparts, long pause_us)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < n; i++) {
        job j;
        memset(&j, 0, sizeof j);
        j.nparts = nparts;
        atomic_store(&j.live, 1);
        spx_kern_pool_run(nparts, task, &j);
        atomic_store(&j.live, 0);
        for (unsigned p = 0; p < nparts; p++)
            bad += atomic_load(&j.runs[p]) != 1u;
        if (pause_us)
            nap_us(pause_us);
    }
    return bad;
}

static void *caller_main(void *arg)
{
    unsigned *bad = arg;
    *bad = run_jobs(3000, 3, 0);
    return NULL;
}

int spx_test_main(void)
{
    int saved = spx_kern_threads();
    for (int t = 1; t <= 4; t++) {
        spx_kern_set_threads(t);
        for (unsigned np = 1; np <= 5; np++) {
            CHECK_MSG(run_jobs(2000, np, 0) == 0, "back to back: threads %d parts %u", t, np);
            CHECK_MSG(run_jobs(20, np, 400) == 0, "with pauses: threads %d parts %u", t, np);
        }
    }
    /* several callers at once */
    spx_kern_set_threads(3);
    {
        pthread_t th[3];
        unsigned bad[3] = {0, 0, 0};
        int started = 0;
        for (int i = 0; i < 3; i++)
            started += pthread_create(&th[i], NULL, caller_main, &bad[i]) == 0;
        CHECK(started == 3);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        CHECK(bad[0] == 0 && bad[1] == 0 && bad[2] == 0);
    }
    /* shutdown between jobs; the pool restarts on demand */
    for (int k = 0; k < 5; k++) {
        CHECK(run_jobs(50, 3, 0) == 0);
        spx_kern_shutdown();
    }
    CHECK(run_jobs(50, 4, 0) == 0);
    CHECK_MSG(atomic_load(&g_errors) == 0, "%u task calls outside their job", atomic_load(&g_errors));
    spx_kern_set_threads(saved);
    spx_kern_shutdown();
    return 0;
}
