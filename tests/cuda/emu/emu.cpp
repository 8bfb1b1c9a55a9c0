// The emulator's launch machinery, CUDA runtime calls on host memory, and kernels/cuda/runtime.cu's
// functions (KT_EMU_DEVICES emulated devices, default 1). Device memory starts as 0xcd bytes, as real
// memory is garbage.
#undef _FORTIFY_SOURCE /* its longjmp check rejects jumps between fiber stacks */
#include <setjmp.h>
#include <ucontext.h>

#include <map>
#include <mutex>
#include <vector>

#include "kernels/cuda/kt_cuda.h"
#include "cuemu.h"

/* Under AddressSanitizer (run_emulated.sh with KT_EMU_ASAN=1) every switch between the scheduler's
 * stack and a fiber's is announced, so that ASan knows which stack is live (else it reports false
 * errors); without it these are no-ops. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FIBER_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define FIBER_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define FIBER_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define FIBER_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif
static void *sched_fake;              /* ASan's fake-stack handle of the scheduler while a fiber runs */
static const void *sched_bottom;     /* the scheduler's stack, as ASan reports it on the first switch */
static size_t sched_size;

thread_local emu_uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

/* Kernels that synchronise or shuffle run each CUDA thread of a block as a fiber on this one OS
 * thread: a fiber runs until it waits at a barrier (__syncthreads: the block; a shuffle: its warp),
 * and a barrier opens when every live thread of its group waits there. Fibers start through
 * makecontext and switch with _setjmp/_longjmp (no signal-mask system call per switch). A real
 * thread per CUDA thread, as before, spent most of a model step creating threads. */
enum { F_RUN, F_WARP, F_BLOCK, F_DONE };
enum { STACK = 64 << 10 };
struct Fiber {
    ucontext_t uc;
    jmp_buf jb;
    int state, started;
    char *stack;
    void *fake; /* ASan's fake-stack handle while it is switched out */
};
static std::vector<Fiber> fibers;
static jmp_buf sched_jb;
static int cur_fiber, cur_coop;
static emu_uint3 cur_bi;
static std::function<void()> *cur_body;
static double warp_buf[32][32];

/* KT_EMU_ORDER=reverse: blocks, and the threads of a block between two barriers, run last first. A
 * kernel that reads another thread's shared-memory or global writes without a barrier between (or
 * relies on block order) then gets other values than in the default order, so running the suite both
 * ways finds races the one fixed order hides. */
static int reverse_order() {
    static int r = -1;
    if (r < 0) {
        const char *e = getenv("KT_EMU_ORDER");
        r = e && !strcmp(e, "reverse");
        if (e && *e && !r && strcmp(e, "forward")) { fprintf(stderr, "EMU: KT_EMU_ORDER must be forward or reverse, not '%s'\n", e); abort(); }
    }
    return r;
}
#define ORDERED(t, n) (reverse_order() ? (n) - 1 - (t) : (t))

static void set_thread_index(int t) {
    threadIdx = {(unsigned)(t % blockDim.x), (unsigned)((t / blockDim.x) % blockDim.y), (unsigned)(t / (blockDim.x * blockDim.y))};
    blockIdx = cur_bi;
}

static void wait_at(int state) {
    Fiber &f = fibers[cur_fiber];
    f.state = state;
    if (!_setjmp(f.jb)) {
        FIBER_START(&f.fake, sched_bottom, sched_size);
        _longjmp(sched_jb, 1);
    }
    FIBER_FINISH(fibers[cur_fiber].fake, NULL, NULL); /* resumed by the scheduler */
}

static void fiber_main() {
    FIBER_FINISH(NULL, &sched_bottom, &sched_size); /* started from the scheduler: learn its stack */
    (*cur_body)();
    fibers[cur_fiber].state = F_DONE;
    FIBER_START(NULL, sched_bottom, sched_size); /* NULL: this fiber's stack ends here */
    _longjmp(sched_jb, 1); /* never returns: the scheduler forgets this context */
}

static void resume(int t) {
    Fiber &f = fibers[t];
    cur_fiber = t;
    set_thread_index(t);
    f.state = F_RUN;
    if (_setjmp(sched_jb)) {
        FIBER_FINISH(sched_fake, NULL, NULL); /* back from the fiber */
        return;
    }
    FIBER_START(&sched_fake, f.stack, STACK);
    if (f.started) _longjmp(f.jb, 1);
    f.started = 1;
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = f.stack;
    f.uc.uc_stack.ss_size = STACK;
    f.uc.uc_link = NULL;
    makecontext(&f.uc, fiber_main, 0);
    setcontext(&f.uc);
}

/* the fibers' stacks, freed at exit (LeakSanitizer) */
static void free_fiber_stacks() {
    for (Fiber &f : fibers) free(f.stack);
    fibers.clear();
}

static void run_block_as_fibers(int nt) {
    static int registered;
    if (!registered) registered = atexit(free_fiber_stacks) == 0;
    if ((int)fibers.size() < nt) {
        size_t had = fibers.size();
        fibers.resize(nt);
        for (size_t i = had; i < fibers.size(); i++) fibers[i].stack = (char *)malloc(STACK);
    }
    for (int t = 0; t < nt; t++) fibers[t].state = F_RUN, fibers[t].started = 0;
    for (int t = 0; t < nt; t++) resume(ORDERED(t, nt)); /* each runs to its first barrier or its end */
    for (;;) {
        int live = 0, at_block = 0, moved = 0;
        for (int t = 0; t < nt; t++) live += fibers[t].state != F_DONE, at_block += fibers[t].state == F_BLOCK;
        if (!live) return;
        for (int w = 0; w * 32 < nt; w++) { /* warps whose live lanes all wait at a shuffle */
            int lo = w * 32, hi = lo + 32 < nt ? lo + 32 : nt, waiting = 0, alive = 0;
            for (int t = lo; t < hi; t++) alive += fibers[t].state != F_DONE, waiting += fibers[t].state == F_WARP;
            if (alive && waiting == alive) {
                /* our shuffles name all 32 lanes (mask 0xffffffff): on a card a lane that is missing
                 * (a block not a multiple of 32) or has returned makes the result undefined */
                if (alive != 32) {
                    fprintf(stderr, "EMU: full-warp shuffle in warp %d with %d of 32 lanes present\n", w, alive);
                    abort();
                }
                for (int t = lo; t < hi; t++)
                    if (fibers[ORDERED(t - lo, 32) + lo].state == F_WARP) resume(ORDERED(t - lo, 32) + lo);
                moved = 1;
            }
        }
        if (!moved && at_block == live) {
            for (int t = 0; t < nt; t++)
                if (fibers[ORDERED(t, nt)].state == F_BLOCK) resume(ORDERED(t, nt));
            moved = 1;
        }
        if (!moved) { fprintf(stderr, "EMU: threads of a block wait at different barriers (deadlock)\n"); abort(); }
    }
}

void __syncthreads() {
    if (!cur_coop) { fprintf(stderr, "EMU: __syncthreads in a kernel launched as sequential\n"); abort(); }
    wait_at(F_BLOCK);
}

template <class T> static T shfl(T v, int o) {
    if (!cur_coop) { fprintf(stderr, "EMU: shuffle in a kernel launched as sequential\n"); abort(); }
    int warp = cur_fiber / 32, lane = cur_fiber % 32;
    double d = 0;
    memcpy(&d, &v, sizeof v);
    warp_buf[warp][lane] = d;
    wait_at(F_WARP);
    double r = warp_buf[warp][lane ^ o];
    wait_at(F_WARP);
    T out;
    memcpy(&out, &r, sizeof out);
    return out;
}
float __shfl_xor_sync(unsigned, float v, int o) { return shfl(v, o); }
double __shfl_xor_sync(unsigned, double v, int o) { return shfl(v, o); }

void emu_launch(dim3 grid, dim3 block, int coop, std::function<void()> body) {
    gridDim = grid;
    blockDim = block;
    cur_coop = coop;
    cur_body = &body;
    int nt = block.x * block.y * block.z;
    if (nt > 1024 || grid.y > 65535 || grid.z > 65535 || nt < 1) { fprintf(stderr, "EMU: bad launch %u %u %u / %u %u %u\n", grid.x, grid.y, grid.z, block.x, block.y, block.z); abort(); }
    for (unsigned iz = 0; iz < grid.z; iz++)
        for (unsigned iy = 0; iy < grid.y; iy++)
            for (unsigned ix = 0; ix < grid.x; ix++) {
                unsigned bx = ORDERED(ix, grid.x), by = ORDERED(iy, grid.y), bz = ORDERED(iz, grid.z);
                cur_bi = {bx, by, bz};
                if (coop) {
                    run_block_as_fibers(nt);
                    continue;
                }
                blockIdx = cur_bi;
                for (int i = 0; i < nt; i++) {
                    int t = ORDERED(i, nt);
                    threadIdx = {(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y), (unsigned)(t / (block.x * block.y))};
                    body();
                }
            }
}

/* ---- devices: which GPU each thread is on, and which GPU each buffer lives on ---- */
static int n_devices() { /* read each time: a test may set it (test_cuda_model.c's second-GPU test) */
    const char *e = getenv("KT_EMU_DEVICES");
    int n = e && *e ? atoi(e) : 1;
    if (n < 1 || n > 16) { fprintf(stderr, "EMU: KT_EMU_DEVICES must be 1..16, not '%s'\n", e); abort(); }
    return n;
}
static thread_local int cur_dev; /* CUDA's default: device 0 in every new thread */
struct Buf { size_t n; int dev; };
static std::map<uintptr_t, Buf> bufs; /* start -> size and device of each live cudaMalloc */
static std::mutex bufs_mu;
int emu_current_device() { return cur_dev; }
static int device_of(const void *p) {
    std::lock_guard<std::mutex> g(bufs_mu);
    uintptr_t a = (uintptr_t)p;
    auto it = bufs.upper_bound(a);
    if (it == bufs.begin()) return -1;
    --it;
    return a < it->first + (it->second.n ? it->second.n : 1) ? it->second.dev : -1;
}
void emu_check_on_device(const void *p, const char *what) {
    int d = p ? device_of(p) : -1;
    if (d >= 0 && d != cur_dev) {
        fprintf(stderr, "EMU: %s on GPU %d (this thread's current device) touches memory of GPU %d: a missing cudaSetDevice\n", what, cur_dev, d);
        abort();
    }
}
void emu_check_handle_device(int dev, const char *what) {
    if (dev != cur_dev) {
        fprintf(stderr, "EMU: a %s handle made on GPU %d is used on GPU %d (this thread's current device): a missing cudaSetDevice\n", what, dev,
                cur_dev);
        abort();
    }
}

cudaError_t cudaGetLastError() { return 0; }
const char *cudaGetErrorString(cudaError_t e) {
    if (e == cudaErrorNoKernelImageForDevice) return "no kernel image is available for execution on the device";
    if (e == cudaErrorUnsupportedPtxVersion) return "the provided PTX was compiled with an unsupported toolchain.";
    return e ? "emu error" : "no error";
}
cudaError_t cudaDriverGetVersion(int *v) { *v = 12080; return 0; } /* with KT_EMU_NO_KERNEL_IMAGE=ptx: older than the build */
const char *cudaGetErrorName(cudaError_t e) { return e ? "emuError" : "cudaSuccess"; }
cudaError_t cudaMalloc(void **p, size_t n) {
    /* 256-byte aligned as cudaMalloc's are (cuBLAS's workspace requires it); the exact size, so that
     * AddressSanitizer sees a read past the end */
    if (posix_memalign(p, 256, n ? n : 1)) { *p = NULL; return cudaErrorMemoryAllocation; }
    memset(*p, 0xcd, n); /* device memory starts as garbage */
    std::lock_guard<std::mutex> g(bufs_mu);
    bufs[(uintptr_t)*p] = Buf{n, cur_dev};
    return 0;
}
cudaError_t cudaFree(void *p) {
    if (!p) return 0;
    {
        std::lock_guard<std::mutex> g(bufs_mu);
        bufs.erase((uintptr_t)p);
    }
    free(p);
    return 0;
}
/* The copies: stricter than a card, which copies between GPUs through unified addressing; the
 * engine never does, so a buffer of another GPU here means a thread that did not bind its context */
static void copy_check(void *d, const void *s) {
    emu_check_on_device(d, "a copy or memset");
    emu_check_on_device(s, "a copy");
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) { copy_check(d, s); memmove(d, s, n); return 0; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) { copy_check(d, s); memmove(d, s, n); return 0; }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { copy_check(d, NULL); memset(d, v, n); return 0; }
cudaError_t cudaMemset(void *d, int v, size_t n) { copy_check(d, NULL); memset(d, v, n); return 0; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
cudaError_t cudaDeviceSynchronize() { return 0; }
cudaError_t cudaSetDevice(int d) {
    if (d < 0 || d >= n_devices()) return cudaErrorInvalidDevice;
    cur_dev = d;
    return 0;
}
cudaError_t cudaGetDevice(int *d) { *d = cur_dev; return 0; }
cudaError_t cudaGetDeviceCount(int *n) { *n = n_devices(); return 0; }
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr, int dev) {
    if (dev < 0 || dev >= n_devices()) return cudaErrorInvalidDevice;
    *v = 132;
    return 0;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = 1ull << 34; *t = 1ull << 36; return 0; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) { /* KT_EMU_CC=M.m: the compute capability it reports (9.0) */
    if (dev < 0 || dev >= n_devices()) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "host emulator");
    const char *cc = getenv("KT_EMU_CC");
    if (!cc || sscanf(cc, "%d.%d", &p->major, &p->minor) != 2) p->major = 9, p->minor = 0;
    p->totalGlobalMem = 1ull << 36;
    p->multiProcessorCount = 16;
    return 0;
}

/* runtime.cu replacements */
extern "C" void kt_cuda_query(kt_cuda_info *info) {
    memset(info, 0, sizeof *info);
    info->device_count = n_devices();
    snprintf(info->name, sizeof info->name, "host emulator");
    info->cc_major = 9;
}
extern "C" int kt_cuda_available(void) { return 1; }
extern "C" int kt_cuda_device_props(int device, char *name, size_t name_len, int *cc_major, int *cc_minor, int *sm_count, size_t *total_mem) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device)) return 1;
    snprintf(name, name_len, "%s", p.name);
    *cc_major = p.major, *cc_minor = p.minor, *sm_count = p.multiProcessorCount, *total_mem = p.totalGlobalMem;
    return 0;
}
extern "C" int kt_cuda_malloc(void **ptr, size_t bytes, char *, size_t) { return cudaMalloc(ptr, bytes); }
extern "C" void kt_cuda_free(void *ptr) { cudaFree(ptr); }
extern "C" int kt_cuda_host_register(void *, size_t, char *, size_t) { return 0; } /* host memory is all the emulator has */
extern "C" void kt_cuda_host_unregister(void *) {}
extern "C" int kt_cuda_memcpy_h2d(void *d, const void *s, size_t n, char *, size_t) { return cudaMemcpy(d, s, n, cudaMemcpyHostToDevice); }
extern "C" int kt_cuda_memcpy_d2h(void *d, const void *s, size_t n, char *, size_t) { return cudaMemcpy(d, s, n, cudaMemcpyDeviceToHost); }
extern "C" int kt_cuda_memcpy_d2d(void *d, const void *s, size_t n, char *, size_t) { return cudaMemcpy(d, s, n, cudaMemcpyDeviceToDevice); }
extern "C" int kt_cuda_memset(void *d, int v, size_t n, char *, size_t) { return cudaMemset(d, v, n); }
extern "C" int kt_cuda_sync(char *, size_t) { return 0; }
