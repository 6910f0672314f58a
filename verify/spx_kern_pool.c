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
 * `running` is 0, so no worker can ever claim a part of a job with a stale task pointer (a worker
 * that registers late finds every part claimed and never calls the task).
 *
 * Spinning: a decoded token makes ~100 pool calls 20-100 us apart, and a condition-variable wake
 * costs 10-50 us on a busy host (measured: routing on 2 threads was slower than on 1). So a
 * worker that finishes a job watches `gen` for SPX_KPOOL_SPIN_NS before it sleeps, the caller
 * wakes the condition variable only when a worker sleeps, and it watches its job's completion for
 * as long before it sleeps itself. The spin is the same trade OpenBLAS makes for its threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "spx_kern_int.h"

#define SPX_KPOOL_SPIN_NS 200000L   /* 0.2 ms */

typedef struct kpool {
    pthread_mutex_t busy;     /* held by the caller of a job */
    pthread_mutex_t lock;     /* protects the fields below that are not atomic */
    pthread_cond_t wake;      /* workers wait for a new gen or stop */
    pthread_cond_t idle;      /* the caller waits for running == 0 */
    atomic_ulong gen;         /* written under lock; read without it by spinning workers */
    atomic_int stop;          /* written under lock */
    unsigned nworkers;        /* threads started */
    unsigned sleepers;        /* workers waiting on `wake` */
    atomic_uint running;      /* workers inside the current job (changed under lock) */
    spx_kern_task task;
    void *arg;
    unsigned nparts;
    atomic_uint next;         /* next part to claim */
    atomic_uint done;         /* parts finished */
    pthread_t tid[SPX_KERN_MAX_THREADS];
} kpool;

static kpool g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                       PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, {0}};

static void cpu_relax(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_ia32_pause();
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* A worker's wait: a gen other than `seen`, or stop. */
static int job_posted(unsigned long seen)
{
    return atomic_load(&g_pool.gen) != seen || atomic_load(&g_pool.stop);
}

/* The caller's wait: every one of `nparts` parts done and no worker inside the job. */
static int job_finished(unsigned long nparts)
{
    return atomic_load(&g_pool.done) >= nparts && atomic_load(&g_pool.running) == 0;
}

/* Spin until ready(arg), for at most SPX_KPOOL_SPIN_NS (the clock is read every 64 rounds). */
static void spin_until(int (*ready)(unsigned long), unsigned long arg)
{
    long end = now_ns() + SPX_KPOOL_SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (ready(arg))
            return;
        cpu_relax();
        if (i % 64 == 0 && now_ns() > end)
            return;
    }
}

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
    seen = atomic_load(&g_pool.gen);
    for (;;) {
        pthread_mutex_unlock(&g_pool.lock);
        spin_until(job_posted, seen);
        pthread_mutex_lock(&g_pool.lock);
        while (!job_posted(seen)) {
            g_pool.sleepers++;
            pthread_cond_wait(&g_pool.wake, &g_pool.lock);
            g_pool.sleepers--;
        }
        if (atomic_load(&g_pool.stop))
            break;
        seen = atomic_load(&g_pool.gen);
        if (self + 1 >= g_pool.nparts)
            continue;
        spx_kern_task task = g_pool.task;
        void *arg = g_pool.arg;
        unsigned nparts = g_pool.nparts;
        atomic_fetch_add(&g_pool.running, 1u);
        pthread_mutex_unlock(&g_pool.lock);
        claim_parts(task, arg, nparts);
        pthread_mutex_lock(&g_pool.lock);
        if (atomic_fetch_sub(&g_pool.running, 1u) == 1u)
            pthread_cond_broadcast(&g_pool.idle);
    }
    pthread_mutex_unlock(&g_pool.lock);
    return NULL;
}

/* Stop and join the workers. Caller holds `busy`. */
static void pool_stop(void)
{
    pthread_mutex_lock(&g_pool.lock);
    atomic_store(&g_pool.stop, 1);
    pthread_cond_broadcast(&g_pool.wake);
    pthread_mutex_unlock(&g_pool.lock);
    for (unsigned i = 0; i < g_pool.nworkers; i++)
        pthread_join(g_pool.tid[i], NULL);
    g_pool.nworkers = 0;
    atomic_store(&g_pool.stop, 0);
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
    while (atomic_load(&g_pool.running) > 0)
        pthread_cond_wait(&g_pool.idle, &g_pool.lock);
    g_pool.task = task;
    g_pool.arg = arg;
    g_pool.nparts = nparts;
    atomic_store(&g_pool.next, 0u);
    atomic_store(&g_pool.done, 0u);
    atomic_fetch_add(&g_pool.gen, 1ul);
    if (g_pool.sleepers > 0)
        pthread_cond_broadcast(&g_pool.wake);
    pthread_mutex_unlock(&g_pool.lock);

    claim_parts(task, arg, nparts);

    spin_until(job_finished, nparts);
    pthread_mutex_lock(&g_pool.lock);
    while (!job_finished(nparts))
        pthread_cond_wait(&g_pool.idle, &g_pool.lock);
    pthread_mutex_unlock(&g_pool.lock);
    pthread_mutex_unlock(&g_pool.busy);
}
