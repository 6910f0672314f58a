/* spx_kern_pool.c: a small persistent pthread pool that splits kernel rows.
 *
 * One job at a time: the caller holds `busy` for the whole job (a concurrent caller finds it taken
 * and runs its parts itself). A job is a task and a part count; the caller and the workers claim
 * parts from an atomic counter, so a missing worker (pthread_create failed) only costs speed. The
 * results never depend on who runs a part: the kernels give every row the same arithmetic.
 *
 * Job hand-over: the caller publishes the job under `lock` and bumps `gen`; a worker that sees a
 * new gen registers itself in `running` under the same lock before claiming parts; the caller
 * returns only when every part is done and `running` is 0, and it publishes a job only when
 * `running` is 0, so no worker can ever claim a part of a job with a stale task pointer. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "spx_kern_int.h"

typedef struct kpool {
    pthread_mutex_t busy;     /* held by the caller of a job */
    pthread_mutex_t lock;     /* protects everything below except `next`/`done` */
    pthread_cond_t wake;      /* workers wait for a new gen or stop */
    pthread_cond_t idle;      /* the caller waits for running == 0 */
    unsigned long gen;
    int stop;
    unsigned nworkers;        /* threads started */
    unsigned running;         /* workers inside the current job */
    spx_kern_task task;
    void *arg;
    unsigned nparts;
    atomic_uint next;         /* next part to claim */
    atomic_uint done;         /* parts finished */
    pthread_t tid[SPX_KERN_MAX_THREADS];
} kpool;

static kpool g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                       PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, {0}};
static atomic_int g_threads;             /* 0 = not chosen yet */
static atomic_size_t g_min_parallel = 256 * 1024;

static void claim_parts(spx_kern_task task, void *arg, unsigned nparts)
{
    unsigned i;
    while ((i = atomic_fetch_add(&g_pool.next, 1u)) < nparts) {
        task(arg, i, nparts);
        atomic_fetch_add(&g_pool.done, 1u);
    }
}

/* Worker `self` (0-based) joins a job only when the job wants it (self + 1 < nparts), so idle
 * extra workers never delay a job with fewer parts. */
static void *worker_main(void *selfp)
{
    const unsigned self = (unsigned)(uintptr_t)selfp;
    unsigned long seen;
    pthread_mutex_lock(&g_pool.lock);
    seen = g_pool.gen;
    for (;;) {
        while (!g_pool.stop && g_pool.gen == seen)
            pthread_cond_wait(&g_pool.wake, &g_pool.lock);
        if (g_pool.stop)
            break;
        seen = g_pool.gen;
        if (self + 1 >= g_pool.nparts)
            continue;
        spx_kern_task task = g_pool.task;
        void *arg = g_pool.arg;
        unsigned nparts = g_pool.nparts;
        g_pool.running++;
        pthread_mutex_unlock(&g_pool.lock);
        claim_parts(task, arg, nparts);
        pthread_mutex_lock(&g_pool.lock);
        if (--g_pool.running == 0)
            pthread_cond_broadcast(&g_pool.idle);
    }
    pthread_mutex_unlock(&g_pool.lock);
    return NULL;
}

/* Stop and join the workers. Caller holds `busy`. */
static void pool_stop(void)
{
    pthread_mutex_lock(&g_pool.lock);
    g_pool.stop = 1;
    pthread_cond_broadcast(&g_pool.wake);
    pthread_mutex_unlock(&g_pool.lock);
    for (unsigned i = 0; i < g_pool.nworkers; i++)
        pthread_join(g_pool.tid[i], NULL);
    g_pool.nworkers = 0;
    g_pool.stop = 0;
}

/* Start workers up to `want` (caller holds `busy`). Failures leave fewer workers. */
static void pool_grow(unsigned want)
{
    while (g_pool.nworkers < want) {
        if (pthread_create(&g_pool.tid[g_pool.nworkers], NULL, worker_main, (void *)(uintptr_t)g_pool.nworkers) != 0)
            break;
        g_pool.nworkers++;
    }
}

int spx_kern_threads(void)
{
    int n = atomic_load(&g_threads);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > SPX_KERN_MAX_THREADS ? SPX_KERN_MAX_THREADS : (int)c;
        atomic_store(&g_threads, n);
    }
    return n;
}

int spx_kern_set_threads(int n)
{
    n = n < 1 ? 1 : n > SPX_KERN_MAX_THREADS ? SPX_KERN_MAX_THREADS : n;
    atomic_store(&g_threads, n);   /* surplus workers stay asleep until spx_kern_shutdown */
    return n;
}

void spx_kern_set_min_parallel(size_t bytes)
{
    atomic_store(&g_min_parallel, bytes);
}

size_t spx_kern_min_parallel(void)
{
    return atomic_load(&g_min_parallel);
}

void spx_kern_shutdown(void)
{
    pthread_mutex_lock(&g_pool.busy);
    pool_stop();
    pthread_mutex_unlock(&g_pool.busy);
}

void spx_kern_pool_run(unsigned nparts, spx_kern_task task, void *arg)
{
    if (nparts > SPX_KERN_MAX_THREADS)
        nparts = SPX_KERN_MAX_THREADS;
    if (nparts <= 1 || pthread_mutex_trylock(&g_pool.busy) != 0) {
        for (unsigned i = 0; i < nparts; i++)
            task(arg, i, nparts);
        return;
    }
    pool_grow(nparts - 1);
    pthread_mutex_lock(&g_pool.lock);
    while (g_pool.running > 0)
        pthread_cond_wait(&g_pool.idle, &g_pool.lock);
    g_pool.task = task;
    g_pool.arg = arg;
    g_pool.nparts = nparts;
    atomic_store(&g_pool.next, 0u);
    atomic_store(&g_pool.done, 0u);
    g_pool.gen++;
    pthread_cond_broadcast(&g_pool.wake);
    pthread_mutex_unlock(&g_pool.lock);

    claim_parts(task, arg, nparts);

    pthread_mutex_lock(&g_pool.lock);
    while (g_pool.running > 0 || atomic_load(&g_pool.done) < nparts)
        pthread_cond_wait(&g_pool.idle, &g_pool.lock);
    pthread_mutex_unlock(&g_pool.lock);
    pthread_mutex_unlock(&g_pool.busy);
}
